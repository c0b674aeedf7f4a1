//! The store as the policy's [`Facts`] and [`Ledger`]: each question one
//! prepared query on the caller's open `BEGIN IMMEDIATE` transaction, so a
//! decision and what it writes stay one atomic step across every sshd.

use super::ban_record::BanRecord;
use super::lookup::{consume_failures, mark_expired, open_bans_containing};
use super::{StoreError, allow, geo, offenders};
use crate::addr;
use crate::policy::{BanPlan, Facts, Ledger};
use crate::time::Timestamp;
use ipnet::IpNet;
use rusqlite::{OptionalExtension, Transaction, params};
use std::net::IpAddr;

/// The policy's view of the store, inside one write transaction.
pub(crate) struct TxFacts<'a, 'c> {
    tx: &'a Transaction<'c>,
}

impl<'a, 'c> TxFacts<'a, 'c> {
    pub(crate) fn new(tx: &'a Transaction<'c>) -> Self {
        TxFacts { tx }
    }

    fn count(&self, sql: &str, p: impl rusqlite::Params) -> Result<u32, StoreError> {
        Ok(self.tx.prepare_cached(sql)?.query_row(p, |r| r.get(0))?)
    }
}

impl Facts for TxFacts<'_, '_> {
    type Ban = BanRecord;
    type Error = StoreError;

    fn allowed_by(&mut self, ip: IpAddr) -> Result<Option<String>, StoreError> {
        allow::allowed_by(self.tx, ip)
    }

    fn active_ban_covering(
        &mut self,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<Option<BanRecord>, StoreError> {
        for ban in open_bans_containing(self.tx, ip)? {
            if ban.is_active(now) {
                return Ok(Some(ban));
            }
            mark_expired(self.tx, &ban)?;
        }
        Ok(None)
    }

    fn past_offender(&mut self, ip: IpAddr, since: Timestamp) -> Result<bool, StoreError> {
        offenders::is_past_offender_in(self.tx, ip, since)
    }

    fn country_of(&mut self, ip: IpAddr) -> Result<Option<String>, StoreError> {
        geo::country_of(self.tx, ip)
    }

    fn live_failures(&mut self, source: &IpNet, since: Timestamp) -> Result<f64, StoreError> {
        let sql = "SELECT total(weight) FROM attempts WHERE source = ?1 AND live = 1 AND at > ?2";
        let mut stmt = self.tx.prepare_cached(sql)?;
        Ok(stmt.query_row(params![addr::display(source), since], |r| r.get(0))?)
    }

    fn earlier_bans(&mut self, source: &IpNet) -> Result<u32, StoreError> {
        let sql = "SELECT COUNT(*) FROM bans WHERE source = ?1";
        self.count(sql, [addr::display(source)])
    }

    fn bans_since(&mut self, source: &IpNet, since: Timestamp) -> Result<u32, StoreError> {
        let sql = "SELECT COUNT(*) FROM bans WHERE source = ?1 AND since > ?2";
        self.count(sql, params![addr::display(source), since])
    }

    fn banned_sources_inside(
        &mut self,
        subnet: &IpNet,
        since: Timestamp,
    ) -> Result<u32, StoreError> {
        let (lo, hi) = addr::range_keys(subnet);
        let sql = "SELECT COUNT(DISTINCT source) FROM bans
                   WHERE lo >= ?1 AND hi <= ?2 AND since > ?3 AND source != ?4";
        self.count(sql, params![lo, hi, since, addr::display(subnet)])
    }

    fn is_banned(&mut self, net: &IpNet, now: Timestamp) -> Result<bool, StoreError> {
        let sql = "SELECT EXISTS (SELECT 1 FROM bans WHERE source = ?1 AND ended IS NULL
                   AND (expires IS NULL OR expires > ?2))";
        let mut stmt = self.tx.prepare_cached(sql)?;
        Ok(stmt.query_row(params![addr::display(net), now], |r| r.get(0))?)
    }

    fn unresponsive_contact(&mut self, subnet: &IpNet) -> Result<Option<String>, StoreError> {
        let sql = "SELECT contact FROM unresponsive_subnets WHERE subnet = ?1";
        let mut stmt = self.tx.prepare_cached(sql)?;
        Ok(stmt
            .query_row([addr::display(subnet)], |r| r.get(0))
            .optional()?)
    }
}

impl Ledger for TxFacts<'_, '_> {
    fn record_ban(&mut self, plan: &BanPlan, now: Timestamp) -> Result<BanRecord, StoreError> {
        let source = addr::display(&plan.net);
        let (lo, hi) = addr::range_keys(&plan.net);
        self.tx.execute(
            "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures, scope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                source,
                lo,
                hi,
                now,
                plan.expires,
                plan.reason,
                plan.origin.as_str(),
                plan.level,
                plan.failures,
                plan.scope.as_str()
            ],
        )?;
        let id = self.tx.last_insert_rowid();
        consume_failures(self.tx, &source)?;
        Ok(BanRecord {
            id,
            source,
            since: now,
            expires: plan.expires,
            ended: None,
            end_reason: None,
            reason: plan.reason.clone(),
            origin: plan.origin.clone(),
            level: plan.level,
            failures: plan.failures,
            scope: plan.scope,
            fleet: None,
        })
    }
}

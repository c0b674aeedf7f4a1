//! Abuse reports that went out (`reports`, `reported_sources`): recorded
//! after the MTA took them, read back to pace automatic reports and to
//! tell which abuse contacts act (a [`ContactLedger`], judged by
//! [`crate::policy::contacts`]).

use super::bans::BanRecord;
use super::lookup::{BAN_COLUMNS, ban_from_row};
use super::{Store, StoreError};
use crate::policy::contacts::{ContactLedger, SourceFate};
use crate::time::Timestamp;
use rusqlite::{OptionalExtension, params};

/// One report the MTA accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReport {
    /// When it was handed to the MTA.
    pub sent: Timestamp,
    /// The recipient (kept lower case).
    pub contact: String,
    /// Its `Message-ID` (without the angle brackets).
    pub message_id: String,
    /// `text` or `xarf`.
    pub format: &'static str,
    /// Sent without a person asking (`[report] auto`).
    pub auto: bool,
    /// The sources it was about, each with its own evidence.
    pub sources: Vec<ReportedSource>,
}

/// One source a report was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedSource {
    /// The address as reported.
    pub address: String,
    /// The source it is counted under (`attempts.source`).
    pub source: String,
    /// The evidence window: the first and last offence quoted.
    pub first: Timestamp,
    /// See `first`.
    pub last: Timestamp,
    /// Log lines quoted.
    pub lines: u32,
}

impl Store {
    /// Writes down a report the MTA accepted, with its sources.
    pub fn record_report(&mut self, report: &SentReport) -> Result<i64, StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO reports (sent, contact, message_id, format, auto)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    report.sent,
                    report.contact.to_ascii_lowercase(),
                    report.message_id,
                    report.format,
                    report.auto
                ],
            )?;
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO reported_sources (report, address, source, first, last, lines)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for s in &report.sources {
                insert.execute(params![id, s.address, s.source, s.first, s.last, s.lines])?;
            }
            Ok(id)
        })
    }

    /// When `contact` was last reported to, if ever.
    pub fn last_report_to(&self, contact: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.conn().query_row(
            "SELECT MAX(sent) FROM reports WHERE contact = ?1",
            [contact.to_ascii_lowercase()],
            |r| r.get(0),
        )?)
    }

    /// When `source` was last reported (to anyone), if ever.
    pub fn last_reported(&self, source: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT MAX(r.sent) FROM reported_sources s JOIN reports r ON r.id = s.report
                 WHERE s.source = ?1",
                [source],
                |r| r.get::<_, Option<Timestamp>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Automatic reports sent at `since` or later.
    pub fn auto_reports_since(&self, since: Timestamp) -> Result<u32, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM reports WHERE auto = 1 AND sent >= ?1",
            [since],
            |r| r.get(0),
        )?)
    }

    /// Bans of `origins` (at most three) made at `since` or later whose
    /// source has not been reported since the ban began, oldest first.
    pub fn bans_to_report(
        &self,
        since: Timestamp,
        origins: &[&str],
    ) -> Result<Vec<BanRecord>, StoreError> {
        let origin = |i: usize| origins.get(i).copied().unwrap_or("");
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {BAN_COLUMNS} FROM bans WHERE since >= ?1 AND origin IN (?2, ?3, ?4)
               AND NOT EXISTS (SELECT 1 FROM reported_sources s JOIN reports r ON r.id = s.report
                               WHERE s.source = bans.source AND r.sent >= bans.since)
             ORDER BY since, id"
        ))?;
        let rows = stmt.query_map(
            params![since, origin(0), origin(1), origin(2)],
            ban_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every contact reported to, with what became of its sources; a
    /// source counts as back when it offended more than `grace` seconds
    /// after its first report to that contact.
    pub fn contact_ledgers(&self, grace: i64) -> Result<Vec<ContactLedger>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT DISTINCT contact FROM reports ORDER BY contact")?;
        let contacts = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut ledgers = Vec::with_capacity(contacts.len());
        for contact in contacts {
            ledgers.extend(self.contact_ledger(&contact, grace)?);
        }
        Ok(ledgers)
    }

    /// One contact's ledger, if it was ever reported to.
    pub fn contact_ledger(
        &self,
        contact: &str,
        grace: i64,
    ) -> Result<Option<ContactLedger>, StoreError> {
        let contact = contact.to_ascii_lowercase();
        let head: Option<(u32, Option<Timestamp>)> = self
            .conn()
            .query_row(
                "SELECT COUNT(*), MAX(sent) FROM reports WHERE contact = ?1",
                [&contact],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((reports, Some(last_report))) = head else {
            return Ok(None);
        };
        let sources = self.source_fates(&contact, grace)?;
        Ok(Some(ContactLedger {
            contact,
            reports,
            last_report,
            sources,
        }))
    }

    fn source_fates(&self, contact: &str, grace: i64) -> Result<Vec<SourceFate>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT s.source, MIN(r.sent) FROM reported_sources s JOIN reports r ON r.id = s.report
             WHERE r.contact = ?1 GROUP BY s.source ORDER BY s.source",
        )?;
        let firsts = stmt
            .query_map([contact], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, Timestamp)>, _>>()?;
        let mut back_attempt = self.conn().prepare(
            "SELECT MIN(at) FROM attempts INDEXED BY attempts_by_source
             WHERE source = ?1 AND at > ?2 AND outcome IN ('failure', 'refused')",
        )?;
        // Bans outlive attempts (the retention purge); the fleet's are
        // not this host's evidence.
        let mut back_ban = self.conn().prepare(
            "SELECT MIN(since) FROM bans WHERE source = ?1 AND since > ?2 AND origin != 'crowdsec'",
        )?;
        let mut unseen = self.conn().prepare(
            "SELECT MAX(COALESCE(ended, expires, 9223372036854775807)) FROM bans
             WHERE source = ?1 AND since <= ?2 + ?3 AND COALESCE(ended, expires, 9223372036854775807) > ?2",
        )?;
        let mut fates = Vec::with_capacity(firsts.len());
        for (source, reported) in firsts {
            let after = reported.saturating_add(grace);
            let a: Option<Timestamp> =
                back_attempt.query_row(params![source, after], |r| r.get(0))?;
            let b: Option<Timestamp> = back_ban.query_row(params![source, after], |r| r.get(0))?;
            let back = match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let until: Option<Timestamp> =
                unseen.query_row(params![source, reported, grace], |r| r.get(0))?;
            fates.push(SourceFate {
                source,
                reported,
                back,
                unseen_until: until.unwrap_or(reported).max(reported),
            });
        }
        Ok(fates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::TempStore;

    fn report(sent: Timestamp, contact: &str, sources: &[&str]) -> SentReport {
        SentReport {
            sent,
            contact: contact.into(),
            message_id: format!("{sent}.{contact}@test"),
            format: "text",
            auto: true,
            sources: sources
                .iter()
                .map(|s| ReportedSource {
                    address: (*s).into(),
                    source: (*s).into(),
                    first: sent - 100,
                    last: sent - 10,
                    lines: 5,
                })
                .collect(),
        }
    }

    #[test]
    fn reports_are_counted_per_contact_and_paced() {
        let t = TempStore::new("reports-pace");
        let mut s = t.open();
        assert_eq!(s.last_report_to("abuse@isp.example").unwrap(), None);
        s.record_report(&report(1_000, "Abuse@ISP.example", &["203.0.113.5"]))
            .unwrap();
        s.record_report(&report(2_000, "abuse@isp.example", &["203.0.113.6"]))
            .unwrap();
        assert_eq!(s.last_report_to("ABUSE@isp.example").unwrap(), Some(2_000));
        assert_eq!(s.last_reported("203.0.113.5").unwrap(), Some(1_000));
        assert_eq!(s.last_reported("203.0.113.7").unwrap(), None);
        assert_eq!(s.auto_reports_since(1_500).unwrap(), 1);
        let ledger = s.contact_ledger("abuse@isp.example", 100).unwrap().unwrap();
        assert_eq!((ledger.reports, ledger.last_report), (2, 2_000));
        assert_eq!(ledger.sources.len(), 2);
        assert!(s.contact_ledger("nobody@x.example", 100).unwrap().is_none());
    }

    #[test]
    fn a_source_is_back_only_when_it_offends_past_the_grace() {
        let t = TempStore::new("reports-back");
        let mut s = t.open();
        s.record_report(&report(
            1_000,
            "abuse@isp.example",
            &["203.0.113.5", "203.0.113.6"],
        ))
        .unwrap();
        let conn = s.conn();
        let attempt = |at: Timestamp, source: &str, outcome: &str| {
            conn.execute(
                "INSERT INTO attempts (at, source, address, user, service, origin, outcome)
                 VALUES (?1, ?2, ?2, x'', 'sshd', 'pam', ?3)",
                params![at, source, outcome],
            )
            .unwrap();
        };
        attempt(1_050, "203.0.113.5", "failure"); // within the grace
        attempt(1_200, "203.0.113.6", "success"); // not an offence
        attempt(1_300, "203.0.113.5", "refused");
        let ledger = s.contact_ledger("abuse@isp.example", 100).unwrap().unwrap();
        let back: Vec<_> = ledger
            .sources
            .iter()
            .map(|f| (f.source.as_str(), f.back))
            .collect();
        assert_eq!(back, [("203.0.113.5", Some(1_300)), ("203.0.113.6", None)]);
    }
}

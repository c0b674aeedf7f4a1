//! Events from sshd's own log (what PAM never sees), recorded against
//! their source like PAM's attempts, and banning the same way (origin
//! `sshd-log`). Whether an event is a failure, and its weight, is decided
//! by `ssh_hook::weigh`; this module only counts and bans.
//!
//! Events arrive in batches, one write transaction per batch, so a burst of
//! 10,000 lines costs a few short transactions, never 10,000, and a login
//! waits behind at most one batch.

use super::admission::{cap, forgive};
use super::bans::BanRecord;
use super::facts::TxFacts;
use super::{Store, StoreError};
use crate::addr;
use crate::config::Config;
use crate::policy::{self, Facts, Trigger};
use crate::time::Timestamp;
use rusqlite::{Transaction, params};
use std::net::IpAddr;

/// What one log event is worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Worth {
    /// A failure of this weight (1 = a full failure).
    Failure(f64),
    /// The same, unless the PAM module recorded an attempt from the source
    /// within [`PAM_OVERLAP`] before it (then PAM has counted it: evidence).
    FailureUnlessPam(f64),
    /// Kept as evidence (abuse reports), not counted.
    Evidence,
    /// A successful login: forgives that user's pending failures from the source.
    Success,
}

/// One sshd log event to record.
#[derive(Debug, Clone, Copy)]
pub struct LogEvent<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// The user name it asked for, if the line names one.
    pub user: Option<&'a [u8]>,
    /// The event's kind, as `guardctl scan --json` names it.
    pub kind: &'a str,
    /// What it is worth.
    pub worth: Worth,
    /// The raw log line (kept for abuse reports).
    pub line: &'a [u8],
    /// When sshd logged it (the follower's clock when the line has no time).
    pub at: Timestamp,
}

/// What recording one event did.
#[derive(Debug, Clone, PartialEq)]
pub enum LogOutcome {
    /// The address is allowed: nothing recorded.
    Allowed,
    /// Recorded as evidence or success; nothing counted.
    Noted,
    /// A ban already covers the source.
    AlreadyBanned,
    /// Counted; the source's failures within `find_time` now weigh this much.
    Counted(f64),
    /// This event tipped a ban (and maybe a subnet ban).
    Banned(Box<BanRecord>, Option<Box<BanRecord>>),
}

/// How far back a PAM attempt makes a log failure the same attempt.
pub const PAM_OVERLAP: Timestamp = 120;

/// The longest raw line kept.
const MAX_LINE_BYTES: usize = 2048;

impl Store {
    /// Records `events` in one write transaction; one outcome per event.
    /// `checkpoint`: a `meta` key and value written in the same transaction
    /// (the follower's position), so a crash neither loses nor repeats events.
    pub fn record_log_events(
        &mut self,
        config: &Config,
        events: &[LogEvent<'_>],
        checkpoint: Option<(super::MetaKey, &str)>,
        now: Timestamp,
    ) -> Result<Vec<LogOutcome>, StoreError> {
        self.write(|tx| {
            let outcomes = events
                .iter()
                .map(|e| record_one(tx, config, e, now))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some((key, value)) = checkpoint {
                super::upsert_meta(tx, key, value)?;
            }
            Ok(outcomes)
        })
    }
}

fn record_one(
    tx: &Transaction<'_>,
    config: &Config,
    event: &LogEvent<'_>,
    now: Timestamp,
) -> Result<LogOutcome, StoreError> {
    let mut facts = TxFacts::new(tx);
    if policy::allowed(&mut facts, config, event.ip)?.is_some() {
        return Ok(LogOutcome::Allowed);
    }
    let source_net = policy::source_of(&config.policy, event.ip);
    let source = addr::display(&source_net);
    let user = cap(event.user.unwrap_or_default());
    let weight = match event.worth {
        Worth::Failure(w) => w,
        Worth::FailureUnlessPam(w) if !pam_attempt_near(tx, &source, event.at)? => w,
        Worth::FailureUnlessPam(_) => 0.0,
        Worth::Evidence => 0.0,
        Worth::Success => {
            insert(tx, event, &source, "success", false, 0.0)?;
            forgive(tx, &source, user)?;
            return Ok(LogOutcome::Noted);
        }
    };
    if facts.active_ban_covering(event.ip, now)?.is_some() {
        insert(tx, event, &source, "refused", false, weight)?;
        return Ok(LogOutcome::AlreadyBanned);
    }
    if weight <= 0.0 {
        insert(tx, event, &source, "failure", false, 0.0)?;
        return Ok(LogOutcome::Noted);
    }
    insert(tx, event, &source, "failure", true, weight)?;
    let trigger = Trigger::Log { kind: event.kind };
    let (failures, plan) = policy::failure_ban(&mut facts, config, &source_net, trigger, now)?;
    let Some(plan) = plan else {
        return Ok(LogOutcome::Counted(failures));
    };
    let (ban, subnet) = policy::ban_and_subnet(&mut facts, config, &plan, now)?;
    Ok(LogOutcome::Banned(Box::new(ban), subnet.map(Box::new)))
}

/// True when the PAM module recorded an attempt from `source` shortly before `at`.
fn pam_attempt_near(tx: &Transaction<'_>, source: &str, at: Timestamp) -> Result<bool, StoreError> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM attempts WHERE source = ?1 AND origin = 'pam' AND at BETWEEN ?2 AND ?3)",
        params![source, at - PAM_OVERLAP, at + 5],
        |r| r.get(0),
    )?)
}

fn insert(
    tx: &Transaction<'_>,
    event: &LogEvent<'_>,
    source: &str,
    outcome: &str,
    live: bool,
    weight: f64,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO attempts (at, source, address, user, service, origin, outcome, live, weight, kind, line)
         VALUES (?1, ?2, ?3, ?4, 'sshd', 'sshd-log', ?5, ?6, ?7, ?8, ?9)",
    )?;
    let line = &event.line[..event.line.len().min(MAX_LINE_BYTES)];
    stmt.execute(params![
        event.at,
        source,
        event.ip.to_string(),
        cap(event.user.unwrap_or_default()),
        outcome,
        live,
        weight,
        event.kind,
        line
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::TempStore;

    fn event(ip: &str, worth: Worth, at: Timestamp) -> LogEvent<'static> {
        LogEvent {
            ip: ip.parse().unwrap(),
            user: Some(b"root"),
            kind: "closed-after-failed-keys",
            worth,
            line: b"Connection closed by authenticating user root 203.0.113.5 port 4000 [preauth]",
            at,
        }
    }

    #[test]
    fn five_weighted_failures_ban_with_origin_sshd_log() {
        let t = TempStore::new("log-events");
        let mut s = t.open();
        let config = Config::default();
        let mut batch = vec![event("203.0.113.5", Worth::Evidence, 100)];
        batch.extend((0..4).map(|i| event("203.0.113.5", Worth::Failure(1.0), 100 + i)));
        batch.push(event("203.0.113.5", Worth::Failure(0.5), 105));
        let out = s.record_log_events(&config, &batch, None, 110).unwrap();
        assert_eq!(out[0], LogOutcome::Noted);
        assert_eq!(out[5], LogOutcome::Counted(4.5), "{out:?}");
        let out = s
            .record_log_events(
                &config,
                &[event("203.0.113.5", Worth::Failure(0.5), 106)],
                None,
                110,
            )
            .unwrap();
        let LogOutcome::Banned(ban, None) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(ban.origin, "sshd-log");
        assert_eq!(ban.source, "203.0.113.5");
        let later = s
            .record_log_events(
                &config,
                &[event("203.0.113.5", Worth::Failure(1.0), 111)],
                None,
                111,
            )
            .unwrap();
        assert_eq!(later[0], LogOutcome::AlreadyBanned);
        let allowed = s
            .record_log_events(
                &config,
                &[event("127.0.0.1", Worth::Failure(1.0), 111)],
                None,
                111,
            )
            .unwrap();
        assert_eq!(allowed[0], LogOutcome::Allowed);
    }

    #[test]
    fn a_success_forgives_that_users_failures() {
        let t = TempStore::new("log-success");
        let mut s = t.open();
        let config = Config::default();
        let fails: Vec<_> = (0..4)
            .map(|i| event("198.51.100.9", Worth::Failure(1.0), 100 + i))
            .collect();
        s.record_log_events(&config, &fails, None, 110).unwrap();
        s.record_log_events(
            &config,
            &[event("198.51.100.9", Worth::Success, 105)],
            None,
            110,
        )
        .unwrap();
        let out = s
            .record_log_events(
                &config,
                &[event("198.51.100.9", Worth::Failure(1.0), 106)],
                None,
                110,
            )
            .unwrap();
        assert_eq!(out[0], LogOutcome::Counted(1.0));
    }
}

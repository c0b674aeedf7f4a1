//! Admission: the one write transaction each login attempt costs.
//!
//! `BEGIN IMMEDIATE` takes the write lock before anything is read, so the
//! check (banned? how many failures?) and the write (record the attempt or
//! create the ban) are atomic across every sshd process: a burst of N
//! parallel attempts from one source lets exactly `max_failures` through.

use super::bans::BanRecord;
use super::facts::TxFacts;
use super::{Store, StoreError};
use crate::addr;
use crate::config::{Config, PolicyConfig};
use crate::policy::{self, Admission};
use crate::time::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};
use std::net::IpAddr;

/// The longest user name kept; longer ones are cut (they are still counted).
pub const MAX_USER_BYTES: usize = 256;

/// One login attempt as the PAM module sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The client's address (already canonical: mapped IPv4 is IPv4).
    pub ip: IpAddr,
    /// The user name as the client sent it: any bytes.
    pub user: &'a [u8],
    /// The PAM service (`sshd`).
    pub service: &'a str,
}

/// What admission decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the password check go ahead; the attempt counts as a failure until marked a success.
    Admitted {
        /// The recorded attempt, for marking it a success later.
        attempt_id: i64,
        /// The source it counts against.
        source: String,
        /// Failures of the source within `find_time`, this attempt included.
        failures: u32,
    },
    /// The address is in the store's allow list: admitted, not counted.
    Allowed {
        /// The allowed network.
        network: String,
    },
    /// Key-only: the source must use a public key (`[keyonly]`, or its
    /// country is in `[geo] keyonly`); its password is refused before it is
    /// checked, and counted as a failure (`policy::KEYONLY_PASSWORD_WEIGHT`).
    KeyOnly {
        /// Why: `past offender`, the mode (`untrusted`, `all`), or
        /// `country CC`.
        why: String,
    },
    /// Refused before the password is checked.
    Refused {
        /// The ban in force.
        ban: BanRecord,
        /// True when this attempt's arrival created the ban.
        created: bool,
        /// A subnet ban this new ban tipped (the subnet rule), if any.
        /// Boxed: rare, and it would double the size of every decision.
        subnet: Option<Box<BanRecord>>,
    },
}

impl Store {
    /// Admits or refuses one attempt, recording it, in one `BEGIN IMMEDIATE` transaction.
    pub fn admit(
        &mut self,
        config: &Config,
        attempt: &Attempt<'_>,
        now: Timestamp,
    ) -> Result<Decision, StoreError> {
        self.write(|tx| admit_in(tx, config, attempt, now))
    }

    /// Marks a successful login: the attempt `attempt_id` if given (and
    /// nothing else: sshd calls setcred twice, and the second call must not
    /// mark an older failure), else the source's latest attempt by the same
    /// user that still counts, within `find_time` (sshd runs
    /// keyboard-interactive PAM in a forked child, so the id is lost there).
    /// Also forgives that user's pending failures from the source.
    /// Returns the attempt marked, if any.
    pub fn record_success(
        &mut self,
        policy: &PolicyConfig,
        ip: IpAddr,
        user: &[u8],
        attempt_id: Option<i64>,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        let source = source_name(policy, ip);
        let user = cap(user);
        let window_start = crate::policy::window_start(policy, now);
        self.write(|tx| {
            let marked: Option<i64> = match attempt_id {
                Some(id) => tx
                    .query_row(
                        "UPDATE attempts SET outcome = 'success', live = 0
                         WHERE id = ?1 AND source = ?2 AND outcome = 'pending' RETURNING id",
                        params![id, source],
                        |r| r.get(0),
                    )
                    .optional()?,
                None => tx
                    .query_row(
                        "UPDATE attempts SET outcome = 'success', live = 0 WHERE id = (
                             SELECT id FROM attempts INDEXED BY attempts_live
                             WHERE source = ?1 AND user = ?2 AND live = 1
                             AND outcome = 'pending' AND at > ?3 ORDER BY id DESC LIMIT 1)
                         RETURNING id",
                        params![source, user, window_start],
                        |r| r.get(0),
                    )
                    .optional()?,
            };
            forgive(tx, &source, user)?;
            Ok(marked)
        })
    }
}

/// A success forgives that user's pending failures from the source
/// (pam_faillock-like), whoever saw the success (PAM or sshd's log).
///
/// `INDEXED BY attempts_live`: left to itself the planner takes
/// `attempts_by_source` and walks every attempt the source ever made, so an
/// admin's own logins grew slower with each one kept (measured: 0.2 ms per
/// login after 4,000 of them; the partial index holds only live rows).
pub(crate) fn forgive(tx: &Transaction<'_>, source: &str, user: &[u8]) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE attempts INDEXED BY attempts_live SET live = 0
         WHERE source = ?1 AND user = ?2 AND live = 1",
        params![source, user],
    )?;
    Ok(())
}

fn admit_in(
    tx: &Transaction<'_>,
    config: &Config,
    attempt: &Attempt<'_>,
    now: Timestamp,
) -> Result<Decision, StoreError> {
    let mut facts = TxFacts::new(tx);
    let refused = |tx| {
        let source = source_name(&config.policy, attempt.ip);
        record(tx, attempt, &source, Outcome::Refused, Counted::No, now)
    };
    Ok(match policy::admit(&mut facts, config, attempt.ip, now)? {
        Admission::Allowed { network } => Decision::Allowed { network },
        Admission::Banned(ban) => {
            refused(tx)?;
            Decision::Refused {
                ban,
                created: false,
                subnet: None,
            }
        }
        Admission::KeyOnly { why, source } => {
            let source = addr::display(&source);
            let counted = Counted::Live(policy::KEYONLY_PASSWORD_WEIGHT);
            record(tx, attempt, &source, Outcome::KeyOnly, counted, now)?;
            Decision::KeyOnly { why }
        }
        Admission::Ban(plan) => {
            let (ban, subnet) = policy::ban_and_subnet(&mut facts, config, &plan, now)?;
            refused(tx)?;
            Decision::Refused {
                ban,
                created: true,
                subnet: subnet.map(Box::new),
            }
        }
        Admission::Admit { source, failures } => {
            let source = addr::display(&source);
            let attempt_id = record(
                tx,
                attempt,
                &source,
                Outcome::Pending,
                Counted::Live(1.0),
                now,
            )?;
            Decision::Admitted {
                attempt_id,
                source,
                failures: policy::whole(failures).saturating_add(1),
            }
        }
    })
}

/// What became of a recorded attempt at admission.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Admitted: `pending` until a success marks it.
    Pending,
    /// Refused under a ban.
    Refused,
    /// A password refused under key-only: outcome `refused`, kind `keyonly`
    /// (what tells it from a ban's refusal once `live` is cleared).
    KeyOnly,
}

/// Whether a recorded attempt counts toward a ban, and with what weight.
#[derive(Debug, Clone, Copy)]
enum Counted {
    /// Not counted (refused under a ban, or the attempt that banned).
    No,
    /// Live, with this weight, until a ban, an unban or a success clears it.
    Live(f64),
}

fn record(
    tx: &Transaction<'_>,
    attempt: &Attempt<'_>,
    source: &str,
    outcome: Outcome,
    counted: Counted,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let (live, weight) = match counted {
        Counted::No => (false, 1.0),
        Counted::Live(weight) => (true, weight),
    };
    let mut stmt = tx.prepare_cached(
        "INSERT INTO attempts (at, source, address, user, service, origin, outcome, live, weight, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pam', ?6, ?7, ?8, ?9)",
    )?;
    let (outcome, kind) = match outcome {
        Outcome::Pending => ("pending", None),
        Outcome::Refused => ("refused", None),
        Outcome::KeyOnly => ("refused", Some("keyonly")),
    };
    stmt.execute(params![
        now,
        source,
        attempt.ip.to_string(),
        cap(attempt.user),
        attempt.service,
        outcome,
        live,
        weight,
        kind
    ])?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn cap(user: &[u8]) -> &[u8] {
    &user[..user.len().min(MAX_USER_BYTES)]
}

/// The store's name for the source `ip` counts against.
pub fn source_name(policy: &PolicyConfig, ip: IpAddr) -> String {
    addr::display(&crate::policy::source_of(policy, ip))
}

#[cfg(test)]
mod tests;

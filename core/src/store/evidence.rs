//! What an abuse report may show about one source: its own attempts, with
//! the raw sshd lines the log follower kept. Queried by exact source, so a
//! report can never carry another source's data; no password is ever
//! stored (the PAM module records user names only).

use super::{Store, StoreError};
use crate::time::Timestamp;
use rusqlite::params;

/// One recorded attempt or log event of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRow {
    /// When.
    pub at: Timestamp,
    /// The client address.
    pub address: String,
    /// The user name tried (raw bytes).
    pub user: Vec<u8>,
    /// Who saw it: `pam` or `sshd-log`.
    pub origin: String,
    /// `pending`, `failure`, `refused`, `success`.
    pub outcome: String,
    /// The sshd event kind (log events), or `keyonly` for a password the
    /// PAM module refused under key-only.
    pub kind: Option<String>,
    /// The raw sshd log line (log events only).
    pub line: Option<Vec<u8>>,
}

impl Store {
    /// The attempts and log events of exactly `source` since `since`, oldest first.
    pub fn evidence(&self, source: &str, since: Timestamp) -> Result<Vec<EvidenceRow>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT at, address, user, origin, outcome, kind, line FROM attempts
             WHERE source = ?1 AND at >= ?2 ORDER BY at, id",
        )?;
        let rows = stmt.query_map(params![source, since], |r| {
            Ok(EvidenceRow {
                at: r.get(0)?,
                address: r.get(1)?,
                user: r.get(2)?,
                origin: r.get(3)?,
                outcome: r.get(4)?,
                kind: r.get(5)?,
                line: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

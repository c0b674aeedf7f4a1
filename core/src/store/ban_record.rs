//! One ban as the store keeps it ([`BanRecord`]), how it reads as a
//! syslog line, and its words' text columns.

use crate::config::BanScope;
use crate::policy::{self, EndReason, Origin};
use crate::time::Timestamp;
use std::time::Duration;

/// One ban, active or past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    /// Row id.
    pub id: i64,
    /// The banned source: an address, or a network in CIDR form.
    pub source: String,
    /// When the ban began.
    pub since: Timestamp,
    /// When it ends by itself; `None` for a permanent ban.
    pub expires: Option<Timestamp>,
    /// When it was lifted or seen expired; `None` while open.
    pub ended: Option<Timestamp>,
    /// Why it ended.
    pub end_reason: Option<EndReason>,
    /// Why it was made.
    pub reason: String,
    /// Who made it.
    pub origin: Origin,
    /// How many bans this source has had, this one included.
    pub level: u32,
    /// Failures that led to it.
    pub failures: u32,
    /// Which ports it closes in the firewall.
    pub scope: BanScope,
    /// For a ban pulled from the fleet (origin `crowdsec`): its decision.
    /// Boxed: rare, and it would double every ban's size.
    pub fleet: Option<Box<FleetDecision>>,
}

/// The LAPI decision a pulled ban mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetDecision {
    /// The LAPI's decision id.
    pub id: i64,
    /// The decision's own origin (`crowdsec`, `cscli`, `CAPI`, `lists`, …).
    pub origin: String,
    /// Its scenario (`crowdsecurity/ssh-bf`, …).
    pub scenario: String,
}

impl BanRecord {
    /// True while the ban refuses logins.
    pub fn is_active(&self, now: Timestamp) -> bool {
        policy::is_active(self.expires, self.ended, now)
    }

    /// The ban's length for people: `10m`, `4w 2d`, or `ever` when permanent.
    pub fn length_text(&self) -> String {
        self.length()
            .map(crate::duration::human)
            .unwrap_or_else(|| "ever".into())
    }

    /// The one syslog line for a new ban, whoever made it (a contract, see
    /// docs/ARCHITECTURE.md):
    /// `ban 203.0.113.7 for 10m after 5 failures (level 1, origin pam)`;
    /// bans not earned by failures give their reason instead
    /// (`ban 198.51.100.0/24 for 1h: office scan (level 1, origin manual)`).
    pub fn log_line(&self) -> String {
        let cause = if self.origin == Origin::Pam {
            format!("after {} failures", self.failures)
        } else {
            format!(": {}", crate::syslog::untrusted(self.reason.as_bytes()))
        };
        let sep = if cause.starts_with(':') { "" } else { " " };
        format!(
            "ban {} for {}{sep}{cause} (level {}, origin {})",
            self.source,
            self.length_text(),
            self.level,
            self.origin
        )
    }

    /// The ban's full length (`None`: permanent).
    pub fn length(&self) -> Option<Duration> {
        self.expires
            .map(|e| Duration::from_secs(u64::try_from(e - self.since).unwrap_or(0)))
    }
}

/// The ban's words as the store keeps them (text columns).
mod sql {
    use crate::config::BanScope;
    use crate::policy::{EndReason, Origin};
    use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

    impl FromSql for Origin {
        fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
            value.as_str().map(Origin::from_word)
        }
    }

    impl FromSql for EndReason {
        fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
            value.as_str().map(EndReason::from_word)
        }
    }

    impl FromSql for BanScope {
        fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
            // The column's CHECK allows only these two.
            match value.as_str()? {
                "all" => Ok(BanScope::All),
                "ports" => Ok(BanScope::Ports),
                _ => Err(FromSqlError::InvalidType),
            }
        }
    }

    impl ToSql for Origin {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(ToSqlOutput::from(self.as_str()))
        }
    }
}

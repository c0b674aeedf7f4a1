//! `guardctl report`'s content: an email-ready complaint about one source,
//! as plain text or X-ARF (the `login-attack` schema), built only from that
//! source's own records (the abuse contact: `crate::whois`). Each time is given in UTC and in the server's own time zone;
//! the names of the host's own accounts are redacted.

use authguard_core::store::bans::BanRecord;
use authguard_core::store::evidence::EvidenceRow;
use authguard_core::syslog::untrusted;
use authguard_core::time::{self, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// The most log lines quoted; the rest is counted.
pub const MAX_EXCERPT: usize = 100;

/// The most sources one batch (an automatic report) lists; the rest wait
/// for the contact's next report.
pub const MAX_BATCH: usize = 50;

/// What the report is about, gathered from the store.
#[derive(Debug)]
pub struct Facts {
    /// The offending address as asked.
    pub address: String,
    /// Its source (network at the policy prefix).
    pub network: String,
    /// Its records, oldest first.
    pub rows: Vec<EvidenceRow>,
    /// The guarded ports.
    pub ports: Vec<u16>,
    /// The bans this host made of it (and of networks holding it).
    pub bans: Vec<BanRecord>,
    /// User names shown as [`REDACTED`]: this host's own accounts.
    pub redacted: BTreeSet<Vec<u8>>,
    /// The server's time zone, for the second timestamp.
    pub zone: jiff::tz::TimeZone,
}

/// What a redacted user name reads as.
pub const REDACTED: &str = "[local account]";

/// Who sends it, and to whom.
#[derive(Debug)]
pub struct Envelope {
    /// `From:`.
    pub from: String,
    /// Who reports, in words.
    pub reporter: String,
    /// `To:`, when known.
    pub to: Option<String>,
    /// Why `To:` is unknown, when it is.
    pub to_note: String,
    /// `Message-ID:` (without the angle brackets).
    pub message_id: String,
    /// Sent without a person asking (`Auto-Submitted: auto-generated`).
    pub auto: bool,
}

impl Facts {
    /// Failed or refused attempts (successes are not complaints).
    fn offences(&self) -> impl Iterator<Item = &EvidenceRow> {
        self.rows.iter().filter(|r| r.outcome != "success")
    }

    /// Log lines a complaint quoting at most `max_lines` quotes.
    pub fn quoted_lines(&self, max_lines: usize) -> u32 {
        u32::try_from(self.offences().count().min(max_lines)).unwrap_or(u32::MAX)
    }

    /// Whether it holds anything to complain about.
    pub fn has_offences(&self) -> bool {
        self.offences().next().is_some()
    }

    /// The evidence window: the first and last record's time.
    pub fn span(&self) -> (Timestamp, Timestamp) {
        let first = self.rows.first().map_or(0, |r| r.at);
        let last = self.rows.last().map_or(0, |r| r.at);
        (first, last)
    }

    /// A user name as the report may show it.
    fn user(&self, name: &[u8]) -> String {
        if self.redacted.contains(name) {
            REDACTED.to_owned()
        } else {
            untrusted(name).into_owned()
        }
    }

    /// `t` in the server's time zone, e.g. `2026-12-07 11:00:00 +01:00`.
    fn local(&self, t: Timestamp) -> String {
        jiff::Timestamp::from_second(t)
            .map(|ts| {
                ts.to_zoned(self.zone.clone())
                    .strftime("%Y-%m-%d %H:%M:%S %:z")
                    .to_string()
            })
            .unwrap_or_else(|_| "?".into())
    }

    /// `t` in UTC and in the server's zone.
    fn both(&self, t: Timestamp) -> String {
        format!("{} ({})", time::rfc3339(t), self.local(t))
    }

    /// The zone's name, for the reader (`Europe/Berlin`, or its offset).
    fn zone_name(&self) -> String {
        self.zone
            .iana_name()
            .map_or_else(|| "the server's local time".into(), str::to_owned)
    }

    /// User names tried, with how often, most tried first.
    fn users(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.offences().filter(|r| !r.user.is_empty()) {
            *counts.entry(self.user(&r.user)).or_default() += 1;
        }
        let mut users: Vec<_> = counts.into_iter().collect();
        users.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        users
    }

    /// The client's source ports, from the sshd lines that name them.
    fn source_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .rows
            .iter()
            .filter_map(|r| r.line.as_deref())
            .filter_map(|l| ssh_hook::parse_line(l, 2000).and_then(|e| e.port))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// One excerpt line per record: the raw sshd line where the log
    /// follower kept it, else what the PAM module recorded.
    fn excerpt(&self) -> Vec<String> {
        self.offences()
            .map(|r| {
                let when = self.both(r.at);
                match &r.line {
                    Some(line) => format!("{when} sshd: {}", self.redact_line(line, &r.user)),
                    None => format!(
                        "{when} pam_authguard: {} password authentication for user {} from {}",
                        if r.outcome == "refused" {
                            "refused"
                        } else {
                            "failed"
                        },
                        self.user(&r.user),
                        r.address
                    ),
                }
            })
            .collect()
    }

    /// An sshd line with `user`, if redacted, replaced wherever it stands
    /// as a word of its own.
    fn redact_line(&self, line: &[u8], user: &[u8]) -> String {
        let text = untrusted(line).into_owned();
        if user.is_empty() || !self.redacted.contains(user) {
            return text;
        }
        let name = untrusted(user).into_owned();
        text.split(' ')
            .map(|word| if word == name { REDACTED } else { word })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One line per ban this host made of the source, oldest first.
    fn ban_lines(&self) -> Vec<String> {
        let mut bans: Vec<&BanRecord> = self.bans.iter().collect();
        bans.sort_by_key(|b| (b.since, b.id));
        bans.iter()
            .map(|b| {
                format!(
                    "{} {} for {}: {} (level {}, origin {})",
                    self.both(b.since),
                    b.source,
                    b.length_text(),
                    untrusted(b.reason.as_bytes()),
                    b.level,
                    b.origin
                )
            })
            .collect()
    }
}

/// This host's own account names, from `/etc/passwd` (empty if unreadable).
pub fn local_accounts(passwd: &str) -> BTreeSet<Vec<u8>> {
    passwd
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .map(|n| n.as_bytes().to_vec())
        .collect()
}

/// `now` as an email's `Date:` wants it (RFC 5322: `Mon, 7 Dec 2026 16:48:17 +0000`).
pub(crate) fn mail_date(now: Timestamp) -> String {
    jiff::Timestamp::from_second(now)
        .ok()
        .and_then(|t| jiff::fmt::rfc2822::to_string(&t.to_zoned(jiff::tz::TimeZone::UTC)).ok())
        .unwrap_or_else(|| time::rfc3339(now))
}

mod text;
mod xarf;

pub use text::{BATCH_EXCERPT, batch, text};
pub use xarf::xarf;

#[cfg(test)]
mod tests;

//! `guardctl report`'s content: an email-ready complaint about one source,
//! as plain text or X-ARF (the `login-attack` schema), built only from that
//! source's own records (the abuse contact: `crate::whois`). Each time is given in UTC and in the server's own time zone;
//! the names of the host's own accounts are redacted.

use authguard_core::store::bans::BanRecord;
use authguard_core::store::evidence::EvidenceRow;
use authguard_core::syslog::untrusted;
use authguard_core::time::{self, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The most log lines quoted; the rest is counted.
pub const MAX_EXCERPT: usize = 100;

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
}

impl Facts {
    /// Failed or refused attempts (successes are not complaints).
    fn offences(&self) -> impl Iterator<Item = &EvidenceRow> {
        self.rows.iter().filter(|r| r.outcome != "success")
    }

    fn span(&self) -> (Timestamp, Timestamp) {
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
fn mail_date(now: Timestamp) -> String {
    jiff::Timestamp::from_second(now)
        .ok()
        .and_then(|t| jiff::fmt::rfc2822::to_string(&t.to_zoned(jiff::tz::TimeZone::UTC)).ok())
        .unwrap_or_else(|| time::rfc3339(now))
}

/// The plain-text complaint (headers, body, excerpt).
pub fn text(facts: &Facts, env: &Envelope, now: Timestamp) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "From: {}", env.from);
    let _ = writeln!(s, "To: {}", env.to.as_deref().unwrap_or(&env.to_note));
    let _ = writeln!(s, "Date: {}", mail_date(now));
    let _ = writeln!(s, "Subject: {}\n", subject(facts));
    s.push_str(&body(facts, env));
    s
}

fn subject(facts: &Facts) -> String {
    let (first, last) = facts.span();
    format!(
        "SSH login attacks from {} ({} attempts, {} to {} UTC)",
        facts.address,
        facts.offences().count(),
        time::rfc3339(first),
        time::rfc3339(last)
    )
}

fn body(facts: &Facts, env: &Envelope) -> String {
    let (first, last) = facts.span();
    let mut s = String::new();
    let _ = writeln!(s, "Hello,\n");
    let _ = writeln!(
        s,
        "{} received {} failed or refused SSH login attempts from {}, between {} and {} (UTC).\n",
        env.reporter,
        facts.offences().count(),
        facts.address,
        time::rfc3339(first),
        time::rfc3339(last)
    );
    let _ = writeln!(s, "First seen: {}", facts.both(first));
    let _ = writeln!(s, "Last seen:  {}", facts.both(last));
    let _ = writeln!(s, "Offending address: {}", facts.address);
    if facts.network != facts.address {
        let _ = writeln!(s, "Network counted as one source: {}", facts.network);
    }
    let ports: Vec<String> = facts.ports.iter().map(u16::to_string).collect();
    let _ = writeln!(s, "Destination port(s): {}", ports.join(", "));
    let source_ports = facts.source_ports();
    if !source_ports.is_empty() {
        let shown: Vec<String> = source_ports.iter().take(20).map(u16::to_string).collect();
        let _ = writeln!(
            s,
            "Source ports: {}{}",
            shown.join(", "),
            if source_ports.len() > 20 {
                format!(" (and {} more)", source_ports.len() - 20)
            } else {
                String::new()
            }
        );
    }
    let users: Vec<String> = facts
        .users()
        .iter()
        .map(|(u, n)| format!("{u} ({n})"))
        .collect();
    let _ = writeln!(
        s,
        "User names tried: {}\n",
        if users.is_empty() {
            "none recorded".into()
        } else {
            users.join(", ")
        }
    );
    let bans = facts.ban_lines();
    if !bans.is_empty() {
        let _ = writeln!(s, "Banned here:");
        for line in &bans {
            let _ = writeln!(s, "  {line}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Log excerpt (each time in UTC, then in {}):\n",
        facts.zone_name()
    );
    let lines = facts.excerpt();
    for line in lines.iter().take(MAX_EXCERPT) {
        let _ = writeln!(s, "{line}");
    }
    if lines.len() > MAX_EXCERPT {
        let _ = writeln!(s, "… and {} more lines", lines.len() - MAX_EXCERPT);
    }
    let _ = writeln!(
        s,
        "\nPlease make the owner of this address stop. This report was written by authguard; no passwords are recorded or included.\n\n-- \n{}",
        env.reporter
    );
    s
}

/// The X-ARF 0.2 message (`login-attack`): a human part, the machine
/// readable report, and the log excerpt as an attachment.
pub fn xarf(facts: &Facts, env: &Envelope, now: Timestamp) -> String {
    let boundary = format!("authguard-xarf-{now}");
    let (first, _) = facts.span();
    let source_type = if facts.address.contains(':') {
        "ipv6"
    } else {
        "ipv4"
    };
    let port = facts.ports.first().copied().unwrap_or(22);
    let mut s = String::new();
    let _ = writeln!(s, "From: {}", env.from);
    let _ = writeln!(s, "To: {}", env.to.as_deref().unwrap_or(&env.to_note));
    let _ = writeln!(s, "Date: {}", mail_date(now));
    let _ = writeln!(s, "Subject: {}", subject(facts));
    let _ = writeln!(s, "MIME-Version: 1.0");
    let _ = writeln!(s, "X-XARF: PLAIN");
    let _ = writeln!(
        s,
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\n"
    );
    let _ = writeln!(s, "--{boundary}\nContent-Type: text/plain; charset=utf-8\n");
    s.push_str(&body(facts, env));
    let _ = writeln!(
        s,
        "\n--{boundary}\nContent-Type: text/plain; charset=utf-8; name=\"report.txt\"\n"
    );
    let _ = writeln!(s, "---");
    for (key, value) in [
        ("Reported-From", env.from.clone()),
        ("Category", "abuse".into()),
        ("Report-Type", "login-attack".into()),
        ("Service", "ssh".into()),
        ("Version", "0.2".into()),
        (
            "User-Agent",
            format!("authguard {}", env!("CARGO_PKG_VERSION")),
        ),
        ("Date", time::rfc3339(first)),
        ("Source-Type", source_type.into()),
        ("Source", facts.address.clone()),
        ("Port", port.to_string()),
        ("Occurrences", facts.offences().count().to_string()),
        ("Report-ID", format!("{}-{now}@authguard", facts.address)),
        ("Attachment", "text/plain".into()),
        (
            "Schema-URL",
            "http://www.x-arf.org/schema/abuse_login-attack_0.1.2.json".into(),
        ),
    ] {
        let _ = writeln!(s, "{key}: {value}");
    }
    let _ = writeln!(
        s,
        "\n--{boundary}\nContent-Type: text/plain; charset=utf-8; name=\"logfile.log\"\n"
    );
    for line in facts.excerpt().iter().take(MAX_EXCERPT) {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "\n--{boundary}--");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: Timestamp, user: &str, line: Option<&str>) -> EvidenceRow {
        EvidenceRow {
            at,
            address: "203.0.113.5".into(),
            user: user.as_bytes().to_vec(),
            origin: if line.is_some() { "sshd-log" } else { "pam" }.into(),
            outcome: "failure".into(),
            kind: None,
            line: line.map(|l| l.as_bytes().to_vec()),
        }
    }

    fn envelope() -> Envelope {
        Envelope {
            from: "root@guarded.example".into(),
            reporter: "guarded.example".into(),
            to: Some("abuse@isp.example".into()),
            to_note: String::new(),
        }
    }

    #[test]
    fn the_text_report_carries_what_an_isp_needs() {
        let facts = Facts {
            address: "203.0.113.5".into(),
            network: "203.0.113.5".into(),
            rows: vec![
                row(
                    1_795_500_000,
                    "root",
                    Some("Failed password for root from 203.0.113.5 port 4001 ssh2"),
                ),
                row(1_795_500_060, "admin", None),
            ],
            ports: vec![22],
            bans: Vec::new(),
            redacted: BTreeSet::new(),
            zone: jiff::tz::TimeZone::UTC,
        };
        let t = text(&facts, &envelope(), 1_795_600_000);
        for want in [
            "To: abuse@isp.example",
            "Date: Wed, 25 Nov 2026 09:46:40 +0000",
            "Subject: SSH login attacks from 203.0.113.5 (2 attempts, 2026-11-24T",
            "User names tried: admin (1), root (1)",
            "Source ports: 4001",
            "Destination port(s): 22",
            "sshd: Failed password for root from 203.0.113.5 port 4001 ssh2",
            "pam_authguard: failed password authentication for user admin from 203.0.113.5",
        ] {
            assert!(t.contains(want), "missing {want:?} in:\n{t}");
        }
        let x = xarf(&facts, &envelope(), 1_795_600_000);
        assert!(
            x.contains("Report-Type: login-attack") && x.contains("X-XARF: PLAIN"),
            "{x}"
        );
        assert!(x.trim_end().ends_with("--"), "{x}");
    }

    #[test]
    fn times_are_in_utc_and_the_server_zone_and_local_names_are_redacted() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        let berlin = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        let ban = |since, reason: &str, origin| BanRecord {
            id: since,
            source: "203.0.113.5".into(),
            since,
            expires: Some(since + 600),
            ended: None,
            end_reason: None,
            reason: reason.into(),
            origin,
            level: 1,
            failures: 5,
            scope: authguard_core::config::BanScope::Ports,
            fleet: None,
        };
        let facts = Facts {
            address: "203.0.113.5".into(),
            network: "203.0.113.5".into(),
            rows: vec![
                row(
                    1_795_500_000,
                    "alice",
                    Some("Failed password for alice from 203.0.113.5 port 4001 ssh2"),
                ),
                row(1_795_500_030, "alice", None),
                row(
                    1_795_500_060,
                    "oracle",
                    Some("Failed password for invalid user oracle from 203.0.113.5 port 4002 ssh2"),
                ),
            ],
            ports: vec![22],
            bans: vec![ban(
                1_795_500_061,
                "5 failures within 10m",
                authguard_core::policy::Origin::Pam,
            )],
            redacted: local_accounts(passwd),
            zone: berlin,
        };
        let t = text(&facts, &envelope(), 1_795_600_000);
        assert!(!t.contains("alice"), "a local account's name leaked:\n{t}");
        for want in [
            "User names tried: [local account] (2), oracle (1)",
            "sshd: Failed password for [local account] from 203.0.113.5 port 4001 ssh2",
            "user [local account] from 203.0.113.5",
            // A guessed name is evidence.
            "invalid user oracle from",
            // 1_795_500_000 is 2026-11-24T06:00:00Z.
            "2026-11-24T06:00:00Z (2026-11-24 07:00:00 +01:00) sshd:",
            "First seen: 2026-11-24T06:00:00Z (2026-11-24 07:00:00 +01:00)",
            "Banned here:",
            "for 10m: 5 failures within 10m (level 1, origin pam)",
        ] {
            assert!(t.contains(want), "missing {want:?} in:\n{t}");
        }
    }
}

//! The plain-text complaint: one source's, or a batch of one contact's
//! sources, each with its own evidence only.

use super::{Envelope, Facts, MAX_EXCERPT, mail_date};
use authguard_core::time::{self, Timestamp};
use std::fmt::Write as _;

/// Log lines quoted per source in a batch (a batch holds up to
/// [`super::MAX_BATCH`] sources).
pub const BATCH_EXCERPT: usize = 20;

/// The plain-text complaint about one source (headers, body, excerpt).
pub fn text(facts: &Facts, env: &Envelope, now: Timestamp) -> String {
    let mut s = headers(env, now, &subject(facts), "text/plain; charset=utf-8", &[]);
    s.push_str(&human(facts, env));
    s
}

/// The words a person reads about one source: greeting, facts, excerpt.
pub(super) fn human(facts: &Facts, env: &Envelope) -> String {
    let mut s = String::from("Hello,\n\n");
    let _ = writeln!(
        s,
        "{} received {} failed or refused SSH login attempts from {}, between {} and {} (UTC).\n",
        env.reporter,
        facts.offences().count(),
        facts.address,
        time::rfc3339(facts.span().0),
        time::rfc3339(facts.span().1)
    );
    s.push_str(&details(facts, MAX_EXCERPT));
    s.push_str(&closing(env));
    s
}

/// One complaint about several sources behind one contact: each section
/// is one source's own records.
pub fn batch(all: &[Facts], env: &Envelope, now: Timestamp) -> String {
    let attempts: usize = all.iter().map(|f| f.offences().count()).sum();
    let subject = format!(
        "SSH login attacks from {} addresses in your network ({attempts} attempts)",
        all.len()
    );
    let mut s = headers(env, now, &subject, "text/plain; charset=utf-8", &[]);
    s.push_str("Hello,\n\n");
    let _ = writeln!(
        s,
        "{} received {attempts} failed or refused SSH login attempts from {} addresses your abuse contact covers. Each section below holds one address's own records.\n",
        env.reporter,
        all.len()
    );
    for (n, facts) in all.iter().enumerate() {
        let _ = writeln!(s, "=== {}. {} ===\n", n + 1, facts.address);
        s.push_str(&details(facts, BATCH_EXCERPT));
        s.push('\n');
    }
    s.push_str(&closing(env));
    s
}

/// The message's headers, ending with the empty line.
pub(super) fn headers(
    env: &Envelope,
    now: Timestamp,
    subject: &str,
    content_type: &str,
    extra: &[&str],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "From: {}", env.from);
    let _ = writeln!(s, "To: {}", env.to.as_deref().unwrap_or(&env.to_note));
    let _ = writeln!(s, "Date: {}", mail_date(now));
    let _ = writeln!(s, "Subject: {subject}");
    let _ = writeln!(s, "Message-ID: <{}>", env.message_id);
    if env.auto {
        // RFC 3834: no vacation replies, please.
        let _ = writeln!(s, "Auto-Submitted: auto-generated");
    }
    for line in extra {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "MIME-Version: 1.0");
    let _ = writeln!(s, "Content-Type: {content_type}");
    if content_type.starts_with("text/") {
        let _ = writeln!(s, "Content-Transfer-Encoding: 8bit");
    }
    s.push('\n');
    s
}

/// `Subject:` of a one-source complaint.
pub(super) fn subject(facts: &Facts) -> String {
    let (first, last) = facts.span();
    format!(
        "SSH login attacks from {} ({} attempts, {} to {} UTC)",
        facts.address,
        facts.offences().count(),
        time::rfc3339(first),
        time::rfc3339(last)
    )
}

fn closing(env: &Envelope) -> String {
    format!(
        "\nPlease make the owner of this address stop. This report was written by authguard; no passwords are recorded or included.\n\n-- \n{}\n",
        env.reporter
    )
}

/// One source's facts: times, addresses, ports, users, bans, and up to
/// `max_lines` lines of its log.
pub(super) fn details(facts: &Facts, max_lines: usize) -> String {
    let (first, last) = facts.span();
    let mut s = String::new();
    let _ = writeln!(s, "First seen: {}", facts.both(first));
    let _ = writeln!(s, "Last seen:  {}", facts.both(last));
    let _ = writeln!(s, "Offending address: {}", facts.address);
    if facts.network != facts.address {
        let _ = writeln!(s, "Network counted as one source: {}", facts.network);
    }
    let _ = writeln!(
        s,
        "Failed or refused attempts: {}",
        facts.offences().count()
    );
    let ports: Vec<String> = facts.ports.iter().map(u16::to_string).collect();
    let _ = writeln!(s, "Destination port(s): {}", ports.join(", "));
    let source_ports = facts.source_ports();
    if !source_ports.is_empty() {
        let shown: Vec<String> = source_ports.iter().take(20).map(u16::to_string).collect();
        let more = source_ports.len().saturating_sub(20);
        let _ = writeln!(
            s,
            "Source ports: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" (and {more} more)")
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
    for line in lines.iter().take(max_lines) {
        let _ = writeln!(s, "{line}");
    }
    if lines.len() > max_lines {
        let _ = writeln!(s, "… and {} more lines", lines.len() - max_lines);
    }
    s
}

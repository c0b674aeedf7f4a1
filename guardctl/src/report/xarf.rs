//! The X-ARF 0.2 complaint (`login-attack`), one source per message.

use super::text::{headers, human, subject};
use super::{Envelope, Facts, MAX_EXCERPT};
use authguard_core::time::{self, Timestamp};
use std::fmt::Write as _;

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
    let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
    let mut s = headers(env, now, &subject(facts), &content_type, &["X-XARF: PLAIN"]);
    let _ = writeln!(
        s,
        "--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    );
    s.push_str(&human(facts, env));
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
        ("Report-ID", env.message_id.clone()),
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

//! The complaints' content.

use super::*;
use authguard_core::time::Timestamp;

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
        message_id: "authguard.1.test@guarded.example".into(),
        auto: false,
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

//! A corpus of *real* sshd log lines, classified by ssh_hook's parser.
//!
//! Debian's own sshd runs privately (no authguard in its PAM stack, so only
//! sshd's messages matter) and real clients provoke every kind of line it
//! can write, each from its own 127.0.0.x source (and one from ::1): wrong
//! passwords and keys, invalid users (one named like the end of a log
//! line), scanners that close, reset, send junk or a disconnect message, an
//! old key exchange, too many authentication failures, a refused user, and
//! successful logins. The kinds this sshd cannot be made to log are listed,
//! with the reason, in [`not_provokable`].
//!
//! Then every line of sshd's log (`-E FILE`) is parsed:
//!
//! - a line that yields an event must name a known client, be one of the
//!   kinds that client may cause, and carry its address, port (one of the
//!   ports sshd saw that source connect from), user and method;
//! - a line that names a client but yields no event must be one of the
//!   benign lines listed below, with the reason it is benign: so a new
//!   failure-bearing wording that the parser misses fails this test;
//! - every kind each client was meant to provoke must be there, and every
//!   kind not listed in [`not_provokable`] must be some client's;
//! - the same lines in a syslog prefix and in a journal JSON object must
//!   give the same events (with the framing's pid and time).

use authguard_e2e::*;
use serde_json::Value;
use ssh_hook::{Event, Kind, Method as Auth};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one client run may take before it is killed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// A user name that has no account.
const GHOST: &str = "ghost-corpus";
/// A user name that has no account and looks like the end of a log line:
/// the parser must still read the address sshd wrote after it.
const FORGER: &str = "forger from 6.6.6.6 port 22";
/// The syslog prefix the lines are framed in, and the time and pid it says.
const SYSLOG_PREFIX: &str = "Nov 24 10:00:01 host sshd[123]: ";
/// 2026-11-24T10:00:01Z, the prefix's time in the year hint 2026.
const PREFIX_TIME: i64 = 1_795_514_401;

/// Kinds any pre-authentication connection may end with, depending on how
/// the client leaves (close, reset, disconnect message).
const ENDINGS: &[Kind] = &[
    Kind::ConnectionClosedPreauth,
    Kind::Disconnected,
    Kind::ReceivedDisconnect,
];

/// One provoked client: where it connects from, and what sshd must say about it.
#[derive(Debug)]
struct Client {
    /// Its source address (`ssh -b`, or a bound socket).
    source: IpAddr,
    /// What it does, for messages.
    what: &'static str,
    /// The user name it asks for.
    user: Option<&'static str>,
    /// The method of its `Failed`/`Accepted` lines.
    method: Option<Auth>,
    /// Kinds that must appear for it.
    must: &'static [Kind],
    /// Further kinds it may cause.
    may: &'static [Kind],
    /// It logs in: the lines of its session's end are not events.
    logs_in: bool,
    /// It provokes what only OpenSSH 9.8+ does (PerSourcePenalties, the
    /// new MaxStartups wording): run on Debian 13 only.
    openssh_10: bool,
}

/// 127.0.0.`last`.
const fn src(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// ::1, the IPv6 client (sshd also listens there).
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Kinds a password client may also cause: other sshd versions log PAM's
/// verdict for `password` logins too.
const PASSWORD_EXTRAS: &[Kind] = &[
    Kind::ConnectionClosedPreauth,
    Kind::Disconnected,
    Kind::ReceivedDisconnect,
    Kind::PamAuthFailure,
];

/// Kinds an invalid user's key client may also cause: sshd 9.2 logs no
/// `Failed publickey for invalid user …`, others may.
const INVALID_KEY_EXTRAS: &[Kind] = &[
    Kind::ConnectionClosedPreauth,
    Kind::Disconnected,
    Kind::ReceivedDisconnect,
    Kind::FailedAuth,
];

/// Every client, with what sshd 9.2 (Debian 12) was seen to log for it.
const CLIENTS: &[Client] = &[
    Client {
        source: src(1),
        what: "the harness's readiness probe (connect, close)",
        user: None,
        method: None,
        must: &[Kind::ConnectionClosedPreauth],
        may: &[],
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(2),
        what: "wrong password (password)",
        user: Some(TEST_USER),
        method: Some(Auth::Password),
        must: &[Kind::FailedAuth, Kind::ConnectionClosedPreauth],
        may: PASSWORD_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(3),
        what: "wrong password (keyboard-interactive)",
        user: Some(TEST_USER),
        method: Some(Auth::KeyboardInteractive),
        must: &[
            Kind::FailedAuth,
            Kind::PamAuthFailure,
            Kind::ConnectionClosedPreauth,
        ],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(4),
        what: "a wrong key only",
        user: Some(TEST_USER),
        method: Some(Auth::PublicKey),
        must: &[Kind::FailedAuth, Kind::ConnectionClosedPreauth],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(5),
        what: "invalid user, password",
        user: Some(GHOST),
        method: Some(Auth::Password),
        must: &[
            Kind::InvalidUser,
            Kind::FailedAuth,
            Kind::ConnectionClosedPreauth,
        ],
        may: PASSWORD_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(6),
        what: "invalid user, key only",
        user: Some(GHOST),
        method: Some(Auth::PublicKey),
        must: &[Kind::InvalidUser, Kind::ConnectionClosedPreauth],
        may: INVALID_KEY_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(7),
        what: "TCP connect, then close",
        user: None,
        method: None,
        must: &[Kind::ConnectionClosedPreauth],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(8),
        what: "a valid banner, then close",
        user: None,
        method: None,
        must: &[Kind::ConnectionClosedPreauth],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(9),
        what: "HTTP instead of a banner",
        user: None,
        method: None,
        must: &[Kind::BannerError],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(10),
        what: "only diffie-hellman-group1-sha1",
        user: None,
        method: None,
        must: &[Kind::UnableToNegotiate],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(11),
        what: "too many keys (MaxAuthTries 2)",
        user: Some(TEST_USER),
        method: Some(Auth::PublicKey),
        must: &[
            Kind::FailedAuth,
            Kind::MaxAuthTries,
            Kind::TooManyAuthFailures,
        ],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(12),
        what: "invalid user, too many keys (MaxAuthTries 2)",
        user: Some(GHOST),
        method: Some(Auth::PublicKey),
        must: &[
            Kind::InvalidUser,
            Kind::MaxAuthTries,
            Kind::TooManyAuthFailures,
        ],
        may: INVALID_KEY_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(13),
        what: "right password",
        user: Some(TEST_USER),
        method: Some(Auth::Password),
        must: &[Kind::Accepted],
        may: &[],
        logs_in: true,
        openssh_10: false,
    },
    Client {
        source: src(14),
        what: "right key",
        user: Some(TEST_USER),
        method: Some(Auth::PublicKey),
        must: &[Kind::Accepted],
        may: &[],
        logs_in: true,
        openssh_10: false,
    },
    Client {
        source: src(15),
        what: "banner, then an SSH_MSG_DISCONNECT",
        user: None,
        method: None,
        must: &[Kind::ReceivedDisconnect, Kind::Disconnected],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(16),
        what: "user refused by DenyUsers",
        user: Some(TEST_USER),
        method: Some(Auth::Password),
        must: &[
            Kind::NotAllowed,
            Kind::FailedAuth,
            Kind::ConnectionClosedPreauth,
        ],
        may: PASSWORD_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(17),
        what: "banner, then a TCP reset",
        user: None,
        method: None,
        must: &[Kind::ConnectionClosedPreauth],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(18),
        what: "invalid user named like a log line's end, password",
        user: Some(FORGER),
        method: Some(Auth::Password),
        must: &[
            Kind::InvalidUser,
            Kind::FailedAuth,
            Kind::ConnectionClosedPreauth,
        ],
        may: PASSWORD_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(19),
        what: "invalid user, keyboard-interactive",
        user: Some(GHOST),
        method: Some(Auth::KeyboardInteractive),
        must: &[
            Kind::InvalidUser,
            Kind::FailedAuth,
            Kind::PamAuthFailure,
            Kind::ConnectionClosedPreauth,
        ],
        may: ENDINGS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: V6,
        what: "wrong password over IPv6",
        user: Some(TEST_USER),
        method: Some(Auth::Password),
        must: &[Kind::FailedAuth, Kind::ConnectionClosedPreauth],
        may: PASSWORD_EXTRAS,
        logs_in: false,
        openssh_10: false,
    },
    Client {
        source: src(20),
        what: "wrong passwords until PerSourcePenalties refuses it (while src 21 waits)",
        user: Some(TEST_USER),
        method: Some(Auth::Password),
        must: &[Kind::FailedAuth, Kind::PenaltyImposed, Kind::PenaltyDrop],
        may: PASSWORD_EXTRAS,
        logs_in: false,
        openssh_10: true,
    },
    Client {
        source: src(21),
        what: "a banner, then waits (an unauthenticated connection for the drop counts)",
        user: None,
        method: None,
        must: &[Kind::ConnectionClosedPreauth],
        may: ENDINGS,
        logs_in: false,
        openssh_10: true,
    },
    Client {
        source: src(22),
        what: "connects while MaxStartups' slots are taken",
        user: None,
        method: None,
        must: &[Kind::MaxStartupsDrop],
        may: &[],
        logs_in: false,
        openssh_10: true,
    },
];

/// The penalties of the OpenSSH 10 corpus: two failed logins (10 s each)
/// pass `min` and put a source out; the rest are sshd's defaults.
const PENALTIES: &str = "PerSourcePenalties authfail:10s min:15s\n";
/// sshd's MaxStartups in the OpenSSH 10 corpus: src 21 and src 20's
/// last try hold two of three slots; the third is held for src 22's drop.
const MAX_STARTUPS: &str = "MaxStartups 3\n";

/// Why sshd cannot be made to log `kind` here; `None` for the kinds this
/// test provokes (each must be in some client's `must`). The match is
/// exhaustive so that a new kind has to be placed here (and in [`Kind::ALL`]).
fn not_provokable(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::NoIdentification => Some(
            "`Did not receive identification string` is OpenSSH <= 7.x; \
             9.2 logs `Connection closed by A port P` for such a client",
        ),
        Kind::BadProtocolVersion => Some(
            "`Bad protocol version identification` is OpenSSH <= 7.x; \
             9.2 logs `banner exchange: … invalid format`",
        ),
        Kind::PreauthTimeout => Some(
            "Debian's 9.2 (since deb12u3, the CVE-2024-6387 fix) makes \
             sshsigdie() exit without logging, so LoginGraceTime runs out silently",
        ),
        Kind::PenaltyDropsUnlogged => Some(
            "sshd logs it only after a 30 s quiet spell in a flood of refused \
             connections: `penalty_summary_on_openssh_10` provokes it on its own \
             and checks its address and count",
        ),
        Kind::ProtocolError => Some(
            "needs a client that breaks the SSH transport after the key exchange \
             (bad MACs, corrupt packets); no stock client does: unit-tested from \
             OpenSSH's own format strings (ssh_hook/tests/openssh_messages.rs)",
        ),
        Kind::ChildCrash => Some(
            "needs sshd's unprivileged child to crash; unit-tested from OpenSSH \
             10.0's sshd.c child_reap() format strings",
        ),
        Kind::FailedAuth
        | Kind::PenaltyDrop
        | Kind::MaxStartupsDrop
        | Kind::PenaltyImposed
        | Kind::InvalidUser
        | Kind::ConnectionClosedPreauth
        | Kind::Disconnected
        | Kind::ReceivedDisconnect
        | Kind::MaxAuthTries
        | Kind::TooManyAuthFailures
        | Kind::PamAuthFailure
        | Kind::NotAllowed
        | Kind::BannerError
        | Kind::UnableToNegotiate
        | Kind::Accepted => None,
    }
}

/// Whether this machine has IPv6 loopback (a container may not).
fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// The test's sshd_config additions: ::1 too (when there is IPv6), a low
/// MaxAuthTries for the too-many-keys clients, and one user refused from
/// one source.
fn extra_config(platform: Platform) -> String {
    let listen_v6 = if ipv6_loopback() {
        "ListenAddress ::1\n"
    } else {
        ""
    };
    let openssh_10 = match platform {
        Platform::Host => String::new(),
        Platform::Debian13 => format!("{PENALTIES}{MAX_STARTUPS}"),
    };
    format!(
        "{listen_v6}{openssh_10}\
         DenyUsers {TEST_USER}@{}\n\
         Match Address {},{}\n\
         \tMaxAuthTries 2\n",
        src(16),
        src(11),
        src(12),
    )
}

#[test]
fn host_every_real_sshd_line_about_a_client_is_classified() {
    corpus(Platform::Host, SshdLog::File);
}

#[test]
fn debian13_every_real_sshd_line_about_a_client_is_classified() {
    corpus(Platform::Debian13, SshdLog::File);
}

#[test]
fn debian13_every_real_sshd_journal_entry_about_a_client_is_classified() {
    corpus(Platform::Debian13, SshdLog::Syslog);
}

/// Where the test reads sshd's lines: its `-E` file, or (syslog) the
/// Debian 13 machine's journal.
enum LogSource {
    File(PathBuf),
    Journal(trixie::Journald, Arc<trixie::Machine>),
}

impl LogSource {
    /// sshd's messages so far, bare, each with its journal JSON line when
    /// they came from the journal.
    fn read(&self) -> Vec<(Vec<u8>, Option<String>)> {
        match self {
            LogSource::File(path) => log_lines(path).into_iter().map(|l| (l, None)).collect(),
            LogSource::Journal(journald, machine) => journald
                .json(machine)
                .into_iter()
                .filter_map(|json| {
                    let entry: Value = serde_json::from_str(&json).ok()?;
                    let program = entry["SYSLOG_IDENTIFIER"].as_str()?;
                    SSHD_PROGRAMS.contains(&program).then_some(())?;
                    Some((journal_message(&entry)?, Some(json)))
                })
                .collect(),
        }
    }

    /// The syslog identifiers of the journal's entries from OpenSSH
    /// programs, with counts (empty for a file).
    fn identifiers(&self) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        if let LogSource::Journal(journald, machine) = self {
            for json in journald.json(machine) {
                let Ok(entry) = serde_json::from_str::<Value>(&json) else {
                    continue;
                };
                if let Some(id) = entry["SYSLOG_IDENTIFIER"].as_str()
                    && id.starts_with("sshd")
                {
                    *seen.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
        seen
    }
}

/// The OpenSSH server programs whose lines the parser reads.
const SSHD_PROGRAMS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// A journal entry's MESSAGE: a string, or an array of bytes when not UTF-8.
fn journal_message(entry: &Value) -> Option<Vec<u8>> {
    match &entry["MESSAGE"] {
        Value::String(text) => Some(text.clone().into_bytes()),
        Value::Array(items) => items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => None,
    }
}

/// Starts sshd on `platform` logging to `log`, provokes every client, and
/// classifies every line (see the module documentation).
fn corpus(platform: Platform, log: SshdLog) {
    if !require_root() {
        return;
    }
    let started = Instant::now();
    let (sshd, source) = start(platform, log);
    // IPv6 loopback may be off (a container without IPv6): then the ::1
    // client is left out, with a note.
    let v6 = ipv6_loopback();
    if !v6 {
        eprintln!("note: no ::1 here; the IPv6 client is skipped");
    }
    let clients: Vec<&Client> = CLIENTS
        .iter()
        .filter(|c| v6 || c.source.is_ipv4())
        .filter(|c| platform == Platform::Debian13 || !c.openssh_10)
        .collect();
    let mut raw_ports = provoke(&sshd, v6);
    if platform == Platform::Debian13 {
        raw_ports.extend(provoke_sshd_defences(&sshd));
    }

    // sshd's children write their last lines as they exit: wait (bounded)
    // until every client's must-kinds are in the log.
    let bare = |lines: &[(Vec<u8>, Option<String>)]| -> Vec<Vec<u8>> {
        lines.iter().map(|(l, _)| l.clone()).collect()
    };
    let complete = wait_until(Duration::from_secs(10), || {
        let seen = kinds_seen(&bare(&source.read()));
        clients
            .iter()
            .all(|c| c.must.iter().all(|k| seen.contains(&(c.source, *k))))
    });
    let entries = source.read();
    let lines = bare(&entries);
    let log_text = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!(
        "--- sshd's log on {platform:?} ({log:?}, {} lines, {:?} in) ---\n{log_text}",
        lines.len(),
        started.elapsed()
    );
    if !complete {
        eprintln!("not every provoked kind was in the log within 10 s");
    }

    let mut report = classify(&lines, &raw_ports, sshd.port());
    for (line, json) in &entries {
        if let Some(json) = json {
            check_journal_entry(line, json, &mut report.problems);
        }
    }
    check_identifiers(platform, &source.identifiers(), &mut report.problems);
    assert!(
        report.problems.is_empty(),
        "{} problem(s):\n{}\n--- sshd's log ---\n{log_text}",
        report.problems.len(),
        report.problems.join("\n")
    );
    let missing = missing_kinds(&clients, &report);
    assert!(
        missing.is_empty(),
        "provoked kinds missing from the log:\n{missing}--- sshd's log ---\n{log_text}"
    );
    eprintln!(
        "classified {} lines on {platform:?} ({log:?}): {} events, {} benign, in {:?}",
        lines.len(),
        report.events,
        report.benign.values().sum::<usize>(),
        started.elapsed()
    );
    for (kind, count) in &report.kinds {
        eprintln!("  event x{count}: {kind:?}");
    }
    for (reason, count) in &report.benign {
        eprintln!("  benign x{count}: {reason}");
    }
}

/// sshd's summary of the drops it stopped logging, on the real 10.0 sshd:
/// a penalised source knocks 12 times at once (sshd logs the first 7 and
/// rate-limits the rest), is quiet for 31 s (sshd's hysteresis), and knocks
/// once more; that drop's line is followed by `PerSourcePenalties logging
/// rate-limited: additional N connections dropped`. authguard must tie the
/// summary to that drop's address, count N as sshd did, and charge nothing.
#[test]
fn penalty_summary_on_openssh_10() {
    if !require_root() {
        return;
    }
    let source = src(23);
    let extra = "PerSourcePenalties authfail:60s min:15s max:600s\n";
    let sshd = Sshd::launch(Platform::Debian13, Stack::Unguarded, extra);
    let r = ssh_password_from(&sshd, source, TEST_USER, WRONG_PASSWORD, Method::Password);
    assert!(!r.status.success(), "{}\n{}", r.describe(), sshd.diag());
    let refused =
        |sshd: &Sshd| first_line(&mut raw_client(sshd, source)).starts_with(b"Not allowed");
    assert!(
        wait_until(Duration::from_secs(10), || refused(&sshd)),
        "PerSourcePenalties never refused {source}\n{}",
        sshd.diag()
    );
    const BURST: usize = 12;
    for _ in 0..BURST {
        assert!(
            refused(&sshd),
            "a knock of the burst got in\n{}",
            sshd.diag()
        );
    }
    std::thread::sleep(Duration::from_secs(32));
    assert!(refused(&sshd), "the last knock got in\n{}", sshd.diag());

    let path = sshd.sshd_log_path();
    let summary_logged = wait_until(Duration::from_secs(5), || {
        log_lines(&path)
            .iter()
            .any(|l| mentions(&String::from_utf8_lossy(l), "logging rate-limited"))
    });
    let lines = log_lines(&path);
    let text: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert!(
        summary_logged,
        "no rate-limit summary:\n{}",
        text.join("\n")
    );
    // The file has no pids (sshd -E): give every listener line one, as syslog would.
    let mut classifier = ssh_hook::Classifier::new(2026);
    let mut sequencer = ssh_hook::Sequencer::new();
    let mut tracker = ssh_hook::Tracker::new();
    let weights = ssh_hook::Weights {
        probe: 0.5,
        pam_active: false,
    };
    let (mut drops, mut summaries) = (0u32, Vec::new());
    for line in &lines {
        let framed = [b"Dec  7 10:00:00 host sshd[1]: ".as_slice(), line].concat();
        let Some(event) = sequencer.resolve(classifier.classify(&framed)).event() else {
            continue;
        };
        match event.kind {
            Kind::PenaltyDrop => drops += 1,
            Kind::PenaltyDropsUnlogged => {
                assert_eq!(tracker.weigh(&event, &weights), ssh_hook::Verdict::Evidence);
                summaries.push((event.addr, event.times));
            }
            _ => {}
        }
    }
    eprintln!("{}", text.join("\n"));
    let [(addr, unlogged)] = summaries[..] else {
        panic!("one summary expected: {summaries:?}\n{}", text.join("\n"));
    };
    assert_eq!(addr, source, "the summary is tied to the drop before it");
    // Every refused knock (the one that ended the wait, the burst, the
    // last) is either a logged drop or counted in the summary.
    assert_eq!(
        (drops + unlogged) as usize,
        1 + BURST + 1,
        "{drops} logged drops and {unlogged} in the summary\n{}",
        text.join("\n")
    );
    assert!(unlogged >= 1, "sshd rate-limited nothing");
}

/// The sshd, and where its lines are read.
fn start(platform: Platform, log: SshdLog) -> (Sshd, LogSource) {
    let extra = extra_config(platform);
    match (platform, log) {
        (_, SshdLog::File) => {
            let sshd = Sshd::launch(platform, Stack::Unguarded, &extra);
            let path = sshd.sshd_log_path();
            (sshd, LogSource::File(path))
        }
        (Platform::Debian13, SshdLog::Syslog) => {
            let machine = Arc::new(trixie::Machine::boot());
            let journald = machine.start_journald();
            let sshd =
                Sshd::launch_in_logging(machine.clone(), Stack::Unguarded, &extra, SshdLog::Syslog);
            (sshd, LogSource::Journal(journald, machine))
        }
        (Platform::Host, SshdLog::Syslog) => {
            panic!("the host corpus reads sshd's file; sshd_journal.rs covers the host journal")
        }
    }
}

/// Runs every client against `sshd`; returns the local port of each raw
/// (non-ssh) client, which sshd's `Connection from` line must name.
fn provoke(sshd: &Sshd, v6: bool) -> BTreeMap<IpAddr, u16> {
    // Password clients, wrong passwords (and a refused user's right one).
    for (source, user, password, method) in [
        (src(2), TEST_USER, WRONG_PASSWORD, Method::Password),
        (
            src(3),
            TEST_USER,
            WRONG_PASSWORD,
            Method::KeyboardInteractive,
        ),
        (src(5), GHOST, WRONG_PASSWORD, Method::Password),
        (src(16), TEST_USER, RIGHT_PASSWORD, Method::Password),
        (src(18), FORGER, WRONG_PASSWORD, Method::Password),
        (src(19), GHOST, WRONG_PASSWORD, Method::KeyboardInteractive),
        (V6, TEST_USER, WRONG_PASSWORD, Method::Password),
    ] {
        if source.is_ipv6() && !v6 {
            continue;
        }
        let r = ssh_password_from(sshd, source, user, password, method);
        assert!(
            !r.status.success() && !r.timed_out,
            "{source}: {}\n{}",
            r.describe(),
            sshd.diag()
        );
    }
    let ok = sshd.login(&src(13).to_string(), RIGHT_PASSWORD, Method::Password);
    assert!(ok.logged_in(), "{}\n{}", ok.describe(), sshd.diag());
    provoke_key_clients(sshd);
    provoke_old_kex(sshd);
    provoke_scanners(sshd)
}

/// The right key, throwaway keys sshd does not know, and too many of them.
fn provoke_key_clients(sshd: &Sshd) {
    let ok = sshd.login_with_key(&src(14).to_string());
    assert!(ok.logged_in(), "{}\n{}", ok.describe(), sshd.diag());
    let strangers: Vec<PathBuf> = (0..4)
        .map(|n| keygen(&sshd.dir().join(format!("stranger_{n}"))))
        .collect();
    for (source, user) in [(4, TEST_USER), (6, GHOST)] {
        let r = sshd.login_with_key_as(&src(source).to_string(), user, &strangers[0]);
        assert!(
            !r.logged_in() && !r.timed_out,
            "{}\n{}",
            r.describe(),
            sshd.diag()
        );
    }
    for (source, user) in [(11, TEST_USER), (12, GHOST)] {
        let mut cmd = ssh_command(sshd, src(source), user);
        for key in &strangers {
            cmd.arg("-i").arg(key);
        }
        cmd.args(["-o", "IdentitiesOnly=yes"])
            .args(["-o", "PreferredAuthentications=publickey"])
            .args(["-o", "BatchMode=yes"])
            .arg(server_for(src(source)))
            .arg("echo logged-in");
        let r = run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT);
        assert!(
            !r.status.success() && !r.timed_out,
            "{}\n{}",
            r.describe(),
            sshd.diag()
        );
    }
}

/// A client offering only a key exchange sshd no longer allows.
fn provoke_old_kex(sshd: &Sshd) {
    let mut cmd = ssh_command(sshd, src(10), TEST_USER);
    cmd.args(["-o", "KexAlgorithms=diffie-hellman-group1-sha1"])
        .args(["-o", "BatchMode=yes"])
        .arg(server_for(src(10)))
        .arg("true");
    let r = run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT);
    assert!(
        !r.status.success() && !r.timed_out,
        "the old key exchange was not refused: {}\n{}",
        r.describe(),
        sshd.diag()
    );
}

/// Scanners: connect and close; a banner and close; HTTP instead of a
/// banner; a banner and a reset; a banner and a disconnect message.
fn provoke_scanners(sshd: &Sshd) -> BTreeMap<IpAddr, u16> {
    let mut raw_ports = BTreeMap::new();
    let stream = raw_client(sshd, src(7));
    raw_ports.insert(src(7), local_port(&stream));
    drop(stream);

    let mut stream = raw_client(sshd, src(8));
    raw_ports.insert(src(8), local_port(&stream));
    stream.write_all(b"SSH-2.0-x\r\n").expect("send banner");
    read_server_banner_and_kexinit(&mut stream);
    drop(stream);

    let mut stream = raw_client(sshd, src(9));
    raw_ports.insert(src(9), local_port(&stream));
    stream
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .expect("send HTTP");
    read_to_end(&mut stream);

    let mut stream = raw_client(sshd, src(17));
    raw_ports.insert(src(17), local_port(&stream));
    stream.write_all(b"SSH-2.0-x\r\n").expect("send banner");
    read_server_banner_and_kexinit(&mut stream);
    close_with_reset(stream);

    let mut stream = raw_client(sshd, src(15));
    raw_ports.insert(src(15), local_port(&stream));
    stream.write_all(b"SSH-2.0-x\r\n").expect("send banner");
    read_server_banner_and_kexinit(&mut stream);
    stream
        .write_all(&disconnect_packet(11, "Bye Bye"))
        .expect("send disconnect");
    read_to_end(&mut stream);
    raw_ports
}

/// OpenSSH 9.8+'s own defences: src 20 fails twice and is then refused by
/// PerSourcePenalties while src 21 holds an unauthenticated connection (so
/// the drop's `#N` is not 0); then src 21 holds all of MaxStartups' slots
/// and src 22 is refused for it.
fn provoke_sshd_defences(sshd: &Sshd) -> BTreeMap<IpAddr, u16> {
    let mut raw_ports = BTreeMap::new();
    let waiting = banner_and_wait(sshd, src(21));
    raw_ports.insert(src(21), local_port(&waiting));
    for _ in 0..2 {
        let r = ssh_password_from(sshd, src(20), TEST_USER, WRONG_PASSWORD, Method::Password);
        assert!(!r.status.success(), "{}\n{}", r.describe(), sshd.diag());
    }
    // The listener penalises src 20 once it has reaped the second login's
    // process: knock (bounded) until sshd refuses.
    let refused = wait_until(Duration::from_secs(10), || {
        let mut stream = raw_client(sshd, src(20));
        let greeting = first_line(&mut stream);
        if !greeting.starts_with(b"Not allowed") {
            std::thread::sleep(Duration::from_millis(100));
            return false;
        }
        true
    });
    assert!(
        refused,
        "PerSourcePenalties never refused src 20\n{}",
        sshd.diag()
    );
    let more: Vec<TcpStream> = (0..2).map(|_| banner_and_wait(sshd, src(21))).collect();
    // Refused before sshd logs `Connection from`: no raw port to check.
    let mut stream = raw_client(sshd, src(22));
    let greeting = first_line(&mut stream);
    assert!(
        greeting.starts_with(b"Not allowed"),
        "MaxStartups 3 did not refuse a fourth connection: {:?}\n{}",
        String::from_utf8_lossy(&greeting),
        sshd.diag()
    );
    drop((waiting, more));
    raw_ports
}

/// A raw connection from `source` that has sent its banner and read sshd's:
/// unauthenticated, holding one of MaxStartups' slots while it lives.
fn banner_and_wait(sshd: &Sshd, source: IpAddr) -> TcpStream {
    let mut stream = raw_client(sshd, source);
    stream.write_all(b"SSH-2.0-x\r\n").expect("send banner");
    read_server_banner_and_kexinit(&mut stream);
    stream
}

/// The first line sshd sends (its banner, or why it refused), bounded.
fn first_line(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") && got.len() < 256 {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    got
}

/// Kinds that no client provoked though they should have been, and
/// contradictions between [`not_provokable`] and the clients.
fn missing_kinds(clients: &[&Client], report: &Report) -> String {
    let mut missing = String::new();
    for kind in Kind::ALL {
        let provoked = CLIENTS.iter().any(|c| c.must.contains(&kind));
        match (not_provokable(kind), provoked) {
            (None, false) => {
                let _ = writeln!(missing, "{kind:?}: no client is meant to provoke it");
            }
            (Some(why), true) => {
                let _ = writeln!(missing, "{kind:?}: provoked, yet listed as not ({why})");
            }
            (Some(why), false) => eprintln!("not provoked: {kind:?}: {why}"),
            (None, true) => {}
        }
    }
    for c in clients {
        for kind in c.must {
            if !report.seen.contains(&(c.source, *kind)) {
                let _ = writeln!(missing, "{} ({}): no {kind:?} line", c.source, c.what);
            }
        }
    }
    missing
}

/// A real journal entry must give the event of its bare MESSAGE, with the
/// entry's pid and time.
fn check_journal_entry(message: &[u8], json: &str, problems: &mut Vec<String>) {
    let entry: Value = serde_json::from_str(json).expect("journalctl's JSON");
    let number = |field: &str| entry[field].as_str().and_then(|v| v.parse::<i64>().ok());
    let expected = fields(ssh_hook::parse_message(message)).map(|mut f| {
        f.5 = number("_PID").and_then(|p| u32::try_from(p).ok());
        f.6 = number("__REALTIME_TIMESTAMP").map(|us| us.div_euclid(1_000_000));
        f
    });
    let got = fields(ssh_hook::parse_line(json.as_bytes(), 2026));
    if got != expected {
        problems.push(format!(
            "the journal entry gives {got:?}, its MESSAGE {expected:?}: {json}"
        ));
    }
}

/// On OpenSSH 10 the listener logs as `sshd` and each connection's process
/// as `sshd-session`; `sshd-auth` logs through its monitor. Every identifier
/// seen must be one the parser reads.
fn check_identifiers(
    platform: Platform,
    seen: &BTreeMap<String, usize>,
    problems: &mut Vec<String>,
) {
    if seen.is_empty() {
        return;
    }
    eprintln!("SYSLOG_IDENTIFIERs of sshd's entries on {platform:?}: {seen:?}");
    for id in seen.keys() {
        if !SSHD_PROGRAMS.contains(&id.as_str()) {
            problems.push(format!("journal entries from {id}, which the parser skips"));
        }
    }
    for id in ["sshd", "sshd-session"] {
        if !seen.contains_key(id) {
            problems.push(format!("no journal entry from {id} on {platform:?}"));
        }
    }
}

// ---------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------

/// What [`classify`] found.
#[derive(Debug, Default)]
struct Report {
    /// (source, kind) pairs the parser reported.
    seen: HashSet<(IpAddr, Kind)>,
    /// Lines that yielded an event.
    events: usize,
    /// Events by kind.
    kinds: BTreeMap<&'static str, usize>,
    /// Lines naming a client that are known not to be events, by reason.
    benign: BTreeMap<&'static str, usize>,
    /// Everything wrong, one line each.
    problems: Vec<String>,
}

/// An event's fields, owned, for comparing the parses of one line.
type Fields = (
    Kind,
    IpAddr,
    Option<u16>,
    Option<Vec<u8>>,
    Option<Auth>,
    Option<u32>,
    Option<i64>,
);

fn fields(event: Option<Event<'_>>) -> Option<Fields> {
    event.map(|e| {
        (
            e.kind,
            e.addr,
            e.port,
            e.user.map(|u| u.into_owned()),
            e.method,
            e.pid,
            e.time,
        )
    })
}

/// Checks every line (see the module documentation).
fn classify(lines: &[Vec<u8>], raw_ports: &BTreeMap<IpAddr, u16>, server_port: u16) -> Report {
    let mut report = Report::default();
    let ports = connection_ports(lines);
    for (source, port) in raw_ports {
        if !ports.get(source).is_some_and(|p| p.contains(port)) {
            report.problems.push(format!(
                "{source}: sshd logged no `Connection from {source} port {port}` for the raw client"
            ));
        }
    }
    for raw_line in lines {
        let text = naming_the_server(&String::from_utf8_lossy(raw_line), server_port);
        let bare = fields(ssh_hook::parse_message(raw_line));
        check_framings(raw_line, &bare, &mut report.problems);
        let mentioned: Vec<&Client> = CLIENTS
            .iter()
            .filter(|c| mentions(&text, c.source))
            .collect();
        let Some((kind, addr, port, user, method, _, _)) = bare else {
            for client in mentioned {
                match benign(&text, client) {
                    Some(reason) => *report.benign.entry(reason).or_default() += 1,
                    None => report.problems.push(format!(
                        "{} ({}): line names the client but is no event: {text}",
                        client.source, client.what
                    )),
                }
            }
            continue;
        };
        report.events += 1;
        *report.kinds.entry(kind.as_str()).or_default() += 1;
        let Some(client) = CLIENTS.iter().find(|c| c.source == addr) else {
            report.problems.push(format!(
                "event {kind:?} for {addr}, no client of ours: {text}"
            ));
            continue;
        };
        let problem = |what: String| format!("{} ({}): {what}: {text}", client.source, client.what);
        if !client.must.contains(&kind) && !client.may.contains(&kind) {
            report
                .problems
                .push(problem(format!("unexpected {kind:?}")));
        }
        if mentioned.len() != 1 || mentioned[0].source != client.source {
            report.problems.push(problem(
                "the event's address is not the one the line names".into(),
            ));
        }
        // sshd's listener refuses these before it logs `Connection from`.
        let dropped = matches!(kind, Kind::PenaltyDrop | Kind::MaxStartupsDrop);
        match port {
            Some(p) => {
                if !mentions(&text, format!("{} port {p}", client.source))
                    && !text.contains(&format!("[{}]:{p} ", client.source))
                {
                    report
                        .problems
                        .push(problem(format!("port {p} is not the line's")));
                }
                if !dropped && !ports.get(&client.source).is_some_and(|s| s.contains(&p)) {
                    report.problems.push(problem(format!(
                        "port {p} never connected from this source"
                    )));
                }
            }
            None => {
                if text.contains(&format!("{} port ", client.source)) {
                    report
                        .problems
                        .push(problem("the line's port was missed".into()));
                }
            }
        }
        check_user(&text, kind, user.as_deref(), client, &mut report.problems);
        if matches!(kind, Kind::FailedAuth | Kind::Accepted) && method != client.method {
            report.problems.push(problem(format!(
                "method {method:?}, expected {:?}",
                client.method
            )));
        }
        report.seen.insert((client.source, kind));
    }
    report
}

/// The user the event names must be the client's; kinds whose format always
/// names one must have it, and so must a line that names it.
fn check_user(
    text: &str,
    kind: Kind,
    user: Option<&[u8]>,
    client: &Client,
    problems: &mut Vec<String>,
) {
    let expected = client.user.map(str::as_bytes);
    // pam_unix names no user it has no account for (`… rhost=A` and no `user=`).
    let pam_unix_unknown = text.starts_with("pam_unix(") && !text.contains(" user=");
    let always = !pam_unix_unknown
        && matches!(
            kind,
            Kind::FailedAuth
                | Kind::InvalidUser
                | Kind::MaxAuthTries
                | Kind::TooManyAuthFailures
                | Kind::PamAuthFailure
                | Kind::NotAllowed
                | Kind::Accepted
        );
    let named = client.user.is_some_and(|u| {
        text.contains(&format!("user {u} ")) || text.contains(&format!(" {u} from "))
    });
    let ok = match user {
        Some(u) => Some(u) == expected,
        None => !always && !named,
    };
    if !ok {
        problems.push(format!(
            "{} ({}): {kind:?} with user {:?}, expected {:?}: {text}",
            client.source,
            client.what,
            user.map(String::from_utf8_lossy),
            client.user
        ));
    }
}

/// `parse_line` must find the same event in the line behind a syslog
/// prefix and inside a journal JSON object, with the framing's pid and time.
fn check_framings(line: &[u8], bare: &Option<Fields>, problems: &mut Vec<String>) {
    let framed = |mut f: Fields| {
        (f.5, f.6) = (Some(123), Some(PREFIX_TIME));
        f
    };
    let expected = bare.clone().map(framed);
    let mut syslog = SYSLOG_PREFIX.as_bytes().to_vec();
    syslog.extend_from_slice(line);
    let message = match std::str::from_utf8(line) {
        Ok(text) => Value::from(text),
        Err(_) => Value::from(line.to_vec()),
    };
    let journal = serde_json::json!({
        "__REALTIME_TIMESTAMP": format!("{PREFIX_TIME}000000"),
        "_PID": "123",
        "SYSLOG_IDENTIFIER": "sshd",
        "MESSAGE": message,
    })
    .to_string();
    for (framing, framed_line) in [("syslog", syslog), ("journal JSON", journal.into_bytes())] {
        let got = fields(ssh_hook::parse_line(&framed_line, 2026));
        if got != expected {
            problems.push(format!(
                "{framing} framing gives {got:?}, the bare line {expected:?}: {}",
                String::from_utf8_lossy(&framed_line)
            ));
        }
    }
}

/// Why a line that names `client` but is no event is benign; `None` when
/// it is not known to be. Each rule is as narrow as sshd's format allows.
fn benign(text: &str, client: &Client) -> Option<&'static str> {
    let a = client.source;
    let connection =
        text.starts_with(&format!("Connection from {a} port ")) && text.contains(" on SERVER ");
    let postponed = text.starts_with("Postponed ")
        && text.contains(&format!(" from {a} port "))
        && text.ends_with(" ssh2 [preauth]");
    let logged_in_user = client.user.filter(|_| client.logs_in);
    let session = logged_in_user.is_some_and(|u| {
        text.starts_with(&format!("Starting session: command for {u} from {a} port "))
            || text.starts_with(&format!("Close session: user {u} from {a} port "))
            || (text.starts_with(&format!("Received disconnect from {a} port "))
                && text.ends_with(":11: disconnected by user"))
            || text.starts_with(&format!("Disconnected from user {u} {a} port "))
    });
    let deferred = text.starts_with("srclimit_penalise: ")
        && text.contains(&format!(" {a}/"))
        && text.contains(" deferred penalty of ");
    let rules: [(bool, &'static str); 4] = [
        (
            deferred,
            "sshd notes a penalty below PerSourcePenalties' min: not in force, and its cause is logged apart",
        ),
        (
            connection,
            "LogLevel VERBOSE notes each new connection; how it ends is logged apart",
        ),
        (
            postponed,
            "one step of a login (a prompt sent, a key query answered); its outcome is logged as Failed/Accepted",
        ),
        (
            session,
            "the session of a user who logged in (after its Accepted line): not a failure",
        ),
    ];
    rules
        .iter()
        .find_map(|&(applies, reason)| applies.then_some(reason))
}

/// `text` with the server's own address (127.0.0.1 and ::1 are clients'
/// addresses too) written `SERVER`: `Connection from A port P on SERVER …`,
/// `Server listening on SERVER.`
fn naming_the_server(text: &str, server_port: u16) -> String {
    text.replace(&format!("on 127.0.0.1 port {server_port}"), "on SERVER")
        .replace(&format!("on ::1 port {server_port}"), "on SERVER")
        .replace(&format!("on [127.0.0.1]:{server_port}"), "on SERVER")
        .replace(&format!("on [::1]:{server_port}"), "on SERVER")
}

/// The ports sshd saw each source connect from
/// (`Connection from A port P on 127.0.0.1 port Q …`, LogLevel VERBOSE).
fn connection_ports(lines: &[Vec<u8>]) -> BTreeMap<IpAddr, BTreeSet<u16>> {
    let mut ports: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
    for line in lines {
        let text = String::from_utf8_lossy(line);
        let Some(rest) = text.strip_prefix("Connection from ") else {
            continue;
        };
        let words: Vec<&str> = rest.split(' ').collect();
        if let [addr, "port", port, "on", ..] = words[..]
            && let (Ok(addr), Ok(port)) = (addr.parse(), port.parse())
        {
            ports.entry(addr).or_default().insert(port);
        }
    }
    ports
}

/// Every (source, kind) the parser finds in `lines`.
fn kinds_seen(lines: &[Vec<u8>]) -> HashSet<(IpAddr, Kind)> {
    lines
        .iter()
        .filter_map(|l| ssh_hook::parse_message(l))
        .map(|e| (e.addr, e.kind))
        .collect()
}

/// Whether `text` contains `needle` (an address, or `A port P`) as whole
/// tokens: 127.0.0.1 is not in 127.0.0.12, ::1 not in fe80::1 or ::12, but
/// 127.0.0.2 is in ::ffff:127.0.0.2, and `A port 22` in `A port 22:11: Bye`.
fn mentions(text: &str, needle: impl std::fmt::Display) -> bool {
    let needle = needle.to_string();
    let is_address = needle.parse::<IpAddr>().is_ok();
    let continues = |rest: &str, separator: char, more: fn(char) -> bool| {
        rest.strip_prefix(separator)
            .is_some_and(|r| r.starts_with(more))
    };
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let rest = &text[at + needle.len()..];
        let longer = if is_address {
            rest.starts_with(|c: char| c.is_ascii_hexdigit())
                || continues(rest, '.', |c| c.is_ascii_digit())
                || continues(rest, ':', |c| c.is_ascii_hexdigit() || c == ':')
        } else {
            rest.starts_with(|c: char| c.is_ascii_digit())
        };
        !before.is_some_and(|c| c.is_ascii_hexdigit() || c == '.') && !longer
    })
}

/// The complete lines of sshd's log file, without line endings.
fn log_lines(path: &Path) -> Vec<Vec<u8>> {
    let log = std::fs::read(path).unwrap_or_default();
    log.split_inclusive(|&b| b == b'\n')
        .filter_map(|l| l.strip_suffix(b"\n"))
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect()
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// The test sshd's address in `source`'s family.
fn server_for(source: IpAddr) -> &'static str {
    match source {
        IpAddr::V4(_) => "127.0.0.1",
        IpAddr::V6(_) => "::1",
    }
}

/// `ssh -l USER` from `source` to the test sshd, where its clients run,
/// host keys unchecked; the caller adds more options, then [`server_for`]
/// and the command.
fn ssh_command(sshd: &Sshd, source: IpAddr, user: &str) -> Command {
    let mut cmd = sshd.client("ssh");
    cmd.args(ssh_args(sshd.port(), source, user));
    cmd
}

/// The options of [`ssh_command`]: the harness's, and the user name.
fn ssh_args(port: u16, source: IpAddr, user: &str) -> Vec<String> {
    let mut args = ssh_common_args(port, &source.to_string(), "ERROR");
    args.extend(["-l".to_owned(), user.to_owned()]);
    args
}

/// One password (or keyboard-interactive) attempt through `sshpass`, as the
/// harness's `ssh_password`, from any source and for any user name.
fn ssh_password_from(
    sshd: &Sshd,
    source: IpAddr,
    user: &str,
    password: &str,
    method: Method,
) -> Finished {
    let method = match method {
        Method::Password => "password",
        Method::KeyboardInteractive => "keyboard-interactive",
    };
    let mut cmd = sshd.client("sshpass");
    cmd.arg("-p").arg(password).arg("ssh");
    cmd.args(ssh_args(sshd.port(), source, user))
        .args(["-o", "PubkeyAuthentication=no"])
        .args(["-o", &format!("PreferredAuthentications={method}")])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .arg(server_for(source))
        .arg("echo logged-in");
    run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT)
}

/// A throwaway ed25519 key pair at `path`; returns `path`.
fn keygen(path: &Path) -> PathBuf {
    let r = run_with_timeout(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "corpus-stranger",
                "-f",
            ])
            .arg(path),
        None,
        CLIENT_TIMEOUT,
    );
    assert!(r.status.success(), "ssh-keygen: {}", r.describe());
    path.to_path_buf()
}

/// A TCP connection from `source` to the test sshd, reads bounded in time.
fn raw_client(sshd: &Sshd, source: IpAddr) -> TcpStream {
    let IpAddr::V4(source) = source else {
        panic!("raw clients are IPv4: {source}");
    };
    let stream = sshd.connect_from(source).expect("connect to the test sshd");
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("read timeout");
    stream
}

fn local_port(stream: &TcpStream) -> u16 {
    stream.local_addr().expect("local address").port()
}

/// Reads sshd's `SSH-2.0-…` line and the start of its KEXINIT packet,
/// which sshd sends only once it has read the client's banner: what the
/// client does next happens after the banner exchange, never during it.
fn read_server_banner_and_kexinit(stream: &mut TcpStream) {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            other => panic!("no server banner ({other:?}); got {got:?}"),
        }
    }
    assert!(got.starts_with(b"SSH-2.0-"), "server banner {got:?}");
    let mut packet_start = [0u8; 6];
    stream
        .read_exact(&mut packet_start)
        .expect("the start of sshd's KEXINIT");
    assert_eq!(
        packet_start[5], 20,
        "not a KEXINIT packet: {packet_start:?}"
    );
}

/// Reads until sshd closes (or the read timeout passes); returns what came.
fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    got
}

/// An unencrypted SSH_MSG_DISCONNECT packet (RFC 4253 §6 and §11.1), as a
/// client may send before key exchange.
fn disconnect_packet(reason: u32, text: &str) -> Vec<u8> {
    let mut payload = vec![1u8];
    payload.extend(reason.to_be_bytes());
    payload.extend((text.len() as u32).to_be_bytes());
    payload.extend(text.as_bytes());
    payload.extend(0u32.to_be_bytes());
    let mut padding = 8 - (5 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let mut packet = ((1 + payload.len() + padding) as u32)
        .to_be_bytes()
        .to_vec();
    packet.push(padding as u8);
    packet.extend(payload);
    packet.extend(std::iter::repeat_n(0u8, padding));
    packet
}

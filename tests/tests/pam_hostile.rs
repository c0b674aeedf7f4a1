//! authguard under hostile PAM items, driven by pamtester (no sshd): whatever
//! a client or a resolver puts in PAM_RHOST or PAM_USER, the module neither
//! crashes nor lets it forge log lines, and it decides sanely.

use authguard_e2e::*;
use std::ffi::OsString;
use std::time::Duration;

const LOG_WAIT: Duration = Duration::from_secs(5);

/// Lines the run produced: waits for at least one new line after `before`,
/// then a short grace period for the rest.
fn new_lines(guard: &Guard, before: usize) -> Vec<String> {
    guard.wait_for_lines_after(before, LOG_WAIT);
    std::thread::sleep(Duration::from_millis(50));
    guard.log_lines().split_off(before)
}

fn assert_sane_lines(lines: &[String], what: &str) {
    for l in lines {
        assert!(
            !l.contains(['\n', '\r', '\x1b', '\0']),
            "{what}: a log datagram carries raw control characters: {:?}",
            l
        );
        assert!(l.len() <= 4096, "{what}: a {} byte log line", l.len());
        assert!(l.starts_with('<'), "{what}: not an RFC 3164 line: {l:?}");
    }
}

#[test]
fn hostile_rhosts_are_admitted_logged_and_never_crash() {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let pam = PamService::permit(&guard);
    let cases: Vec<(&str, OsString, bool)> = vec![
        ("ipv4", "203.0.113.7".into(), false),
        ("v4-mapped", "::ffff:203.0.113.7".into(), false),
        ("scoped link-local", "fe80::1%eth0".into(), false),
        ("ipv6", "2001:db8::1".into(), false),
        ("empty", "".into(), true),
        ("host name", "attacker.example.com".into(), true),
        ("address and port", "1.2.3.4 port 22".into(), false),
        ("8 KB", "8".repeat(8 * 1024).into(), false),
        ("10 KB", "9".repeat(10 * 1024).into(), false),
        (
            "newline and escape",
            "203.0.113.8\nban 1.2.3.4 \x1b[31m".into(),
            false,
        ),
    ];
    for (what, rhost, uncounted) in cases {
        let before = guard.log_len();
        let run = pam.run(&rhost, "alice", &["authenticate", "setcred"]);
        assert_eq!(
            run.signal(),
            None,
            "{what}: pamtester was killed: {}",
            run.describe()
        );
        let lines = new_lines(&guard, before);
        if what == "10 KB" && run.code() != Some(0) {
            // libpam itself fails a stack whose PAM_RHOST does not fit in an
            // audit record (about 9000 bytes): pam_authenticate returns
            // PAM_SYSTEM_ERR after every module said yes, with or without
            // authguard. authguard's own decision must still be "admit".
            assert!(
                run.stderr.contains("System error"),
                "{what}: refused, and not by libpam's audit limit: {}\n{}",
                run.describe(),
                guard.diag()
            );
            assert!(
                lines.iter().any(|l| syslog_ident(l) == "pam_authguard"
                    && syslog_message(l).starts_with("admit")),
                "{what}: authguard did not admit: {lines:#?}"
            );
            eprintln!(
                "{what}: authguard admitted; libpam failed the stack (audit record too long)"
            );
        } else {
            assert_eq!(
                run.code(),
                Some(0),
                "{what}: not admitted: {}\n{}",
                run.describe(),
                guard.diag()
            );
        }
        assert!(
            lines.iter().any(|l| syslog_ident(l) == "pam_authguard"),
            "{what}: no log line for the decision\n{}",
            guard.diag()
        );
        assert_sane_lines(&lines, what);
        if uncounted {
            assert!(
                lines.iter().any(|l| {
                    let m = syslog_message(l);
                    m.starts_with("admit") && m.contains("not counted")
                }),
                "{what}: the log does not say the attempt was admitted without counting: {lines:#?}"
            );
        }
        eprintln!(
            "{what}: {:?}",
            lines.iter().map(|l| syslog_message(l)).collect::<Vec<_>>()
        );
    }
    let injected = guard
        .log_lines()
        .into_iter()
        .filter(|l| syslog_message(l).starts_with("ban 1.2.3.4"))
        .collect::<Vec<_>>();
    assert!(injected.is_empty(), "a forged log line: {injected:#?}");
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());
}

#[test]
fn rhosts_that_are_not_addresses_are_never_counted() {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let pam = PamService::deny(&guard);
    for rhost in ["attacker.example.com", ""] {
        for i in 1..=7 {
            let run = pam.run(rhost, "root", &["authenticate"]);
            assert_eq!(run.signal(), None, "{}", run.describe());
            assert_ne!(
                run.code(),
                Some(0),
                "pam_deny must fail: {}",
                run.describe()
            );
            assert_eq!(
                pam.reached_count(rhost),
                i,
                "attempt {i} from {rhost:?} was refused: a non-address got counted\n{}\n{}",
                run.describe(),
                guard.diag()
            );
        }
    }
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());
}

#[test]
fn hostile_user_names_cannot_crash_or_forge_log_lines() {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let pam = PamService::permit(&guard);
    let cases: Vec<(&str, OsString, &str)> = vec![
        ("10 KB", "u".repeat(10 * 1024).into(), "203.0.113.51"),
        ("non-UTF-8", os(b"\xff\xfe"), "203.0.113.52"),
        (
            "control characters",
            "a\nban 1.2.3.4".into(),
            "203.0.113.53",
        ),
        ("escape sequence", "\x1b[31mroot\r".into(), "203.0.113.54"),
        ("empty", "".into(), "203.0.113.55"),
    ];
    for (what, user, rhost) in cases {
        let before = guard.log_len();
        let run = pam.run(rhost, &user, &["authenticate", "setcred"]);
        assert_eq!(
            run.signal(),
            None,
            "{what}: pamtester was killed: {}",
            run.describe()
        );
        assert_eq!(
            run.code(),
            Some(0),
            "{what}: not admitted: {}\n{}",
            run.describe(),
            guard.diag()
        );
        let lines = new_lines(&guard, before);
        assert!(
            lines
                .iter()
                .any(|l| syslog_ident(l) == "pam_authguard" && l.contains(rhost)),
            "{what}: no log line for the decision\n{}",
            guard.diag()
        );
        assert_sane_lines(&lines, what);
        assert!(
            !lines.iter().any(|l| l.contains('\u{fffd}')),
            "{what}: invalid UTF-8 reached the log unescaped: {lines:#?}"
        );
        if what == "control characters" {
            assert!(
                lines.iter().any(|l| l.contains("a\\x0aban 1.2.3.4")),
                "the newline in the user name is not escaped: {lines:#?}"
            );
        }
    }
    let injected = guard
        .log_lines()
        .into_iter()
        .filter(|l| syslog_message(l).starts_with("ban 1.2.3.4"))
        .collect::<Vec<_>>();
    assert!(injected.is_empty(), "a forged log line: {injected:#?}");
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());
}

/// `max_failures` failing runs from `rhost`, then the next is refused before
/// the rest of the stack and `guardctl list` shows `listed`.
fn ban_via_pamtester(guard: &Guard, pam: &PamService, rhost: &str, listed: &str) {
    for i in 1..=5 {
        let run = pam.run(rhost, "root", &["authenticate"]);
        assert_eq!(run.signal(), None, "{}", run.describe());
        assert_ne!(
            run.code(),
            Some(0),
            "pam_deny must fail: {}",
            run.describe()
        );
        assert_eq!(
            pam.reached_count(rhost),
            i,
            "attempt {i} from {rhost} was refused early\n{}",
            guard.diag()
        );
    }
    let refused = pam.run(rhost, "root", &["authenticate"]);
    assert_eq!(refused.signal(), None, "{}", refused.describe());
    assert_ne!(refused.code(), Some(0), "{}", refused.describe());
    assert_eq!(
        pam.reached_count(rhost),
        5,
        "the 6th attempt from {rhost} got past authguard\n{}",
        guard.diag()
    );
    assert!(
        format!("{}{}", refused.stdout, refused.stderr).contains(DEFAULT_BLOCK_MESSAGE),
        "the refused client was not told why: {}",
        refused.describe()
    );
    let ban = guard.listed(listed).unwrap_or_else(|| {
        panic!(
            "{listed} not in `guardctl list --json`: {:#?}\n{}",
            guard.list(),
            guard.diag()
        )
    });
    assert_eq!(ban["origin"], "pam", "{ban:#}");
    assert_eq!(ban["level"], 1, "{ban:#}");
}

#[test]
fn max_failures_then_refused_and_listed_by_source() {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let pam = PamService::deny(&guard);

    ban_via_pamtester(&guard, &pam, "203.0.113.8", "203.0.113.8");

    // IPv4-mapped IPv6 is its IPv4 address: the plain address is banned too.
    ban_via_pamtester(&guard, &pam, "::ffff:203.0.113.9", "203.0.113.9");
    let plain = pam.run("203.0.113.9", "root", &["authenticate"]);
    assert_eq!(
        pam.reached_count("203.0.113.9"),
        0,
        "{}\n{}",
        plain.describe(),
        guard.diag()
    );

    // IPv6 sources are their /64: a neighbour in the same /64 is refused, the next /64 is not.
    ban_via_pamtester(&guard, &pam, "2001:db8:1:2::5", "2001:db8:1:2::/64");
    let neighbour = pam.run("2001:db8:1:2::99", "root", &["authenticate"]);
    assert_eq!(
        pam.reached_count("2001:db8:1:2::99"),
        0,
        "{}\n{}",
        neighbour.describe(),
        guard.diag()
    );
    let next_net = pam.run("2001:db8:1:3::5", "root", &["authenticate"]);
    assert_eq!(
        pam.reached_count("2001:db8:1:3::5"),
        1,
        "{}\n{}",
        next_net.describe(),
        guard.diag()
    );
}

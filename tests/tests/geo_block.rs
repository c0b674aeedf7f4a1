//! Blocked countries become packet drops: `guardctl geo block CC` puts the
//! country's networks into sets `geo4_LEN`/`geo6_LEN` (one per prefix
//! length) of table `inet authguard`, and chain `geo` drops their new
//! connections to port 22 after the allowed networks are accepted. Checked with real TCP connects in a network-namespace lab (see
//! `tests/firewall.rs`), against a one-line country file: XB holds
//! 198.51.100.0/24, where one attacker lives; the other lives elsewhere.
//!
//! Also: the lock-out guard (the admin's SSH session, from `SSH_CONNECTION`,
//! in a country being blocked: exit 2 unless `--force`), and the time a
//! large real country (the US, from Tor's geoip files) takes to load.

use authguard_e2e::netns::{Fixture, Lab, SERVER_V4, SSH_PORT, WAIT, WithDaemon, WithSshd};
use authguard_e2e::*;
use std::time::{Duration, Instant};

/// The contract: the firewall follows a change within 1 s.
const PUSH: Duration = Duration::from_secs(1);
/// The country file: XB is 198.51.100.0/24, XC 192.0.2.0/24 (the server's).
const COUNTRIES: &str = "198.51.100.0,198.51.100.255,XB\n192.0.2.0,192.0.2.255,XC\n";
/// The attacker in XB.
const IN_XB: &str = "198.51.100.7";
/// The attacker in no blocked country.
const ELSEWHERE: &str = "203.0.113.10";
/// Runs guardctl outside any SSH session, whatever the test runner's is.
const NO_SESSION: [(&str, Option<&str>); 2] = [("SSH_CONNECTION", None), ("SSH_CLIENT", None)];

/// A guard with the nftables backend (the fixture runs its guardctl in the
/// lab's server namespace); import the country file once it has started.
fn geo_guard(allow: &[&str]) -> GuardConfig {
    Guard::builder()
        .allow(allow)
        .extra("[firewall]")
        .extra("backend = \"nftables\"")
        .extra("ports = [22]")
        .extra("resync = \"30s\"")
}

/// Writes [`COUNTRIES`] into the guard's directory and imports it.
fn import_countries(guard: &Guard) {
    let file = guard.dir().join("countries.csv");
    std::fs::write(&file, COUNTRIES).expect("write countries.csv");
    guard.guardctl_ok(&["geo", "import", &file.to_string_lossy()]);
}

/// `guardctl ARGS…` inside the lab namespace `netns` (never the host's:
/// its firewall pushes land there), outside any SSH session; panics unless
/// it exits 0.
fn run_ok(guard: &Guard, netns: &str, args: &[&str]) {
    let out = guard.guardctl_in_env(Some(netns), &NO_SESSION, args);
    assert!(
        out.status.success(),
        "guardctl {args:?}: {}\n{}",
        describe_output(&out),
        guard.diag()
    );
}

#[test]
fn the_daemon_drops_a_blocked_country_and_lets_it_back_within_a_second() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[
        ("atk1", &["198.51.100.7/24"]),
        ("atk2", &["203.0.113.10/24"]),
    ])
    .guard(geo_guard(&["127.0.0.1/32"]))
    .then(import_countries)
    .sshd()
    .daemon();
    let d = || {
        format!(
            "--- daemon stderr ---\n{}\n{}{}",
            daemon.stderr(),
            lab.diag(),
            guard.diag()
        )
    };
    lab.assert_open("atk1", IN_XB, SERVER_V4, "nothing blocked yet", &d);
    // guardctl runs in the scratch namespace: its own push lands there, so
    // only the daemon (seeing the geo revision move) changes the server's firewall.
    let scratch = lab.scratch_ns();
    for round in 1..=2 {
        run_ok(&guard, scratch, &["geo", "block", "xb"]);
        let took = lab.blocked_within("atk1", IN_XB, SERVER_V4, "geo block XB", &d);
        assert!(
            took <= PUSH,
            "round {round}: blocked after {took:?}\n{}",
            d()
        );
        assert!(lab.geo_covers(IN_XB), "{}", d());
        lab.assert_open("atk2", ELSEWHERE, SERVER_V4, "not in XB", &d);
        let status = parse_json(&guard.guardctl_ok(&["status", "--json"]));
        let blocked = &status["countries"]["blocked"];
        assert_eq!(blocked[0]["country"], "XB", "{status}");
        assert!(blocked[0]["ranges"].as_u64() >= Some(1), "{status}");

        run_ok(&guard, scratch, &["geo", "unblock", "XB"]);
        let took = lab.open_within("atk1", IN_XB, SERVER_V4, WAIT, "geo unblock XB", &d);
        assert!(took <= PUSH, "round {round}: open after {took:?}\n{}", d());
    }
    assert!(
        daemon.stderr().contains("(country blocks changed)"),
        "the daemon rebuilt for the country change\n{}",
        d()
    );
}

#[test]
fn allowed_networks_win_over_a_blocked_country() {
    if !require_root() {
        return;
    }
    // The lower half of XB is allowed; atk2 is in the upper half.
    let WithSshd {
        lab,
        guard,
        sshd: _sshd,
    } = Fixture::lab(&[
        ("atk1", &["198.51.100.7/24"]),
        ("atk2", &["198.51.100.200/24"]),
        ("atk3", &["203.0.113.10/24"]),
    ])
    .guard(geo_guard(&["127.0.0.1/32", "198.51.100.0/25"]))
    .then(import_countries)
    .sshd();
    let d = || format!("{}{}", lab.diag(), guard.diag());

    // An allowed network in the country, no SSH session to tell where the
    // admin is: refused, nothing written.
    let out = guard.guardctl_env(&NO_SESSION, &["geo", "block", "XB"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        stderr.contains("198.51.100.0/25") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(geo_list(&guard), Vec::<String>::new());

    // Forced, with no daemon running: guardctl's own push builds the table.
    run_ok(&guard, lab.server_ns(), &["geo", "block", "XB", "--force"]);
    assert_eq!(geo_list(&guard), ["XB"]);
    lab.blocked_within(
        "atk2",
        "198.51.100.200",
        SERVER_V4,
        "XB outside the allowed half",
        &d,
    );
    assert!(lab.geo_covers(IN_XB), "in the set, yet accepted\n{}", d());
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        lab.assert_open(
            "atk1",
            IN_XB,
            SERVER_V4,
            "allowed, in a blocked country",
            &d,
        );
    }
    lab.assert_open("atk3", ELSEWHERE, SERVER_V4, "not in XB", &d);
}

/// The blocked countries' codes, from `guardctl geo list --json`.
fn geo_list(guard: &Guard) -> Vec<String> {
    let list = parse_json(&guard.guardctl_ok(&["geo", "list", "--json"]));
    list.as_array()
        .unwrap_or_else(|| panic!("geo list --json is not an array: {list}"))
        .iter()
        .map(|b| b["country"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_lock_out_guard_refuses_to_block_the_admins_own_country_without_force() {
    if !require_root() {
        return;
    }
    // backend "none" (the harness default): no firewall is touched here.
    let guard = Guard::new();
    let file = guard.dir().join("countries.csv");
    std::fs::write(&file, COUNTRIES).expect("write countries.csv");
    guard.guardctl_ok(&["geo", "import", &file.to_string_lossy()]);
    let session = [
        ("SSH_CONNECTION", Some("198.51.100.7 50000 192.0.2.1 22")),
        ("SSH_CLIENT", None),
    ];

    let out = guard.guardctl_env(&session, &["geo", "block", "XB"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        stderr.contains("198.51.100.7 (your SSH session) is in XB")
            && stderr.contains("lock you out")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(geo_list(&guard), Vec::<String>::new(), "nothing written");
    // SSH_CLIENT (an older sshd's only variable) counts the same.
    let client = [
        ("SSH_CONNECTION", None),
        ("SSH_CLIENT", Some("198.51.100.7 50000 22")),
    ];
    let out = guard.guardctl_env(&client, &["geo", "block", "XB"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    // Another country is fine; an unknown code is refused by name.
    let out = guard.guardctl_env(&session, &["geo", "block", "XC", "XY"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(stderr.contains("XY") && !stderr.contains("XC"), "{stderr}");
    assert_eq!(geo_list(&guard), Vec::<String>::new(), "nothing written");

    let out = guard.guardctl_env(&session, &["geo", "block", "XB", "--force"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--force"),
        "the forced block says what it overrode: {}",
        describe_output(&out)
    );
    assert_eq!(geo_list(&guard), ["XB"]);
    assert!(
        guard.wait_for_log("geo block XB (1 range) despite the lock-out guard", WAIT),
        "{}",
        guard.diag()
    );
    // `guardctl check` warns while the session is blocked, not once allowed.
    let check = guard.guardctl_env(&session, &["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("WARN 198.51.100.7 (your SSH session) is in XB, which is blocked"),
        "{stdout}"
    );
    guard.guardctl_ok(&["allow", "add", "198.51.100.7"]);
    let check = guard.guardctl_env(&session, &["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        !stdout.contains("your SSH session") && stdout.contains("XB"),
        "{stdout}"
    );
}

#[test]
fn a_large_real_country_loads_in_seconds_and_bans_still_push_within_a_second() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let Some(tor) = tor_geoip(tmp.path()) else {
        return;
    };
    let (v4, v6) = (tor.join("geoip"), tor.join("geoip6"));
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[("atk1", &["203.0.113.10/24"])])
        .guard(
            Guard::builder()
                .extra("[firewall]")
                .extra("backend = \"nftables\"")
                .extra("resync = \"30s\""),
        )
        .then(|guard| {
            guard.guardctl_ok(&[
                "geo",
                "import",
                &v4.to_string_lossy(),
                &v6.to_string_lossy(),
            ]);
        })
        .sshd()
        .daemon();
    let d = || {
        format!(
            "--- daemon stderr ---\n{}\n{}{}",
            daemon.stderr(),
            lab.diag(),
            guard.diag()
        )
    };

    // guardctl pushes into the scratch namespace (its own full load, timed
    // as a whole command); meanwhile the daemon loads the server's, timed
    // from the command's start to the daemon's log line.
    let scratch = lab.scratch_ns();
    let (command, daemon_took) = while_running(&guard, scratch, &["geo", "block", "US"], || {
        let start = Instant::now();
        wait_until(Duration::from_secs(30), || {
            daemon.stderr().contains("(country blocks changed)")
        })
        .then(|| start.elapsed())
    });
    let daemon_took = daemon_took
        .unwrap_or_else(|| panic!("the daemon did not load the US within 30 s\n{}", d()));
    let line = daemon
        .stderr()
        .lines()
        .find(|l| l.contains("(country blocks changed)"))
        .map(str::to_owned)
        .unwrap_or_default();
    let networks = lab.geo_elements();
    let n4 = networks.iter().filter(|e| e.first.is_ipv4()).count();
    let n6 = networks.len() - n4;
    eprintln!(
        "US: {n4} IPv4 + {n6} IPv6 networks; `geo block US` (reading, rendering, nft load) \
         {command:?}; the daemon's table rebuilt {daemon_took:?} after the command started: {line}"
    );
    assert!(n4 > 10_000 && n6 > 10_000, "{n4} + {n6} networks\n{line}");
    assert!(lab.geo_covers("8.8.8.8"), "{}", d());
    assert!(lab.geo_covers("2001:4860:4860::8888"), "{}", d());
    assert!(!lab.geo_covers("193.0.6.139"), "NL is not blocked");
    assert!(
        command < Duration::from_secs(10) && daemon_took < Duration::from_secs(10),
        "loading the US took {command:?} (guardctl), {daemon_took:?} (daemon)\n{line}"
    );

    // One more ban is still one small batch, within the push contract.
    lab.assert_open("atk1", ELSEWHERE, SERVER_V4, "not in the US", &d);
    let (_, took) = while_running(&guard, scratch, &["ban", ELSEWHERE], || {
        lab.wait_until_blocked("atk1", ELSEWHERE, SERVER_V4, SSH_PORT, WAIT)
    });
    let took = took.unwrap_or_else(|| panic!("the ban was not pushed within {WAIT:?}\n{}", d()));
    eprintln!("ban with the US loaded: dropped by the daemon {took:?} after the command started");
    assert!(
        took <= PUSH,
        "the ban took {took:?} with the US loaded\n{}",
        d()
    );
}

/// Runs `guardctl ARGS…` (see [`run_ok`]) while `observe`, started at the
/// same moment, waits for its effect and says when it came (from its own
/// start); returns how long the command took, and what `observe` said.
fn while_running(
    guard: &Guard,
    netns: &str,
    args: &[&str],
    observe: impl FnOnce() -> Option<Duration>,
) -> (Duration, Option<Duration>) {
    std::thread::scope(|s| {
        let command = s.spawn(|| {
            let start = Instant::now();
            run_ok(guard, netns, args);
            start.elapsed()
        });
        let seen = observe();
        let took = command
            .join()
            .unwrap_or_else(|_| panic!("guardctl {args:?} failed"));
        (took, seen)
    })
}

/// A TCP listener on `addr:port` in lab namespace `ns` (the lab ends it).
fn listen(lab: &Lab, ns: &str, addr: &str, port: u16) -> std::process::Child {
    let script = "import socket, sys\n\
        fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n\
        s = socket.socket(fam, socket.SOCK_STREAM)\n\
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind((sys.argv[1], int(sys.argv[2])))\n\
        s.listen(64)\n\
        while True:\n    s.accept()[0].close()\n";
    let port = port.to_string();
    lab.exec_in(ns, &["/usr/bin/python3", "-c", script, addr, &port])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start a listener")
}

#[test]
fn scope_all_drops_what_the_country_opens_on_any_port_but_not_replies() {
    if !require_root() {
        return;
    }
    let WithSshd {
        lab,
        guard,
        sshd: _sshd,
    } = Fixture::lab(&[
        ("atk1", &["198.51.100.7/24"]),
        ("atk2", &["203.0.113.10/24"]),
    ])
    .guard(
        Guard::builder()
            .extra("[firewall]")
            .extra("backend = \"nftables\"")
            .extra("[geo]")
            .extra("scope = \"all\""),
    )
    .then(import_countries)
    .sshd();
    let mut server_port = listen(&lab, "srv", "0.0.0.0", 2222);
    let mut attacker_port = listen(&lab, "atk1", IN_XB, 8080);
    let d = || format!("{}{}", lab.diag(), guard.diag());
    let up = wait_until(WAIT, || {
        lab.can_connect("atk2", ELSEWHERE, SERVER_V4, 2222, Duration::from_secs(1))
            && lab.can_connect("srv", SERVER_V4, IN_XB, 8080, Duration::from_secs(1))
    });
    assert!(up, "the listeners did not come up\n{}", d());

    run_ok(&guard, lab.server_ns(), &["geo", "block", "XB"]);
    lab.blocked_within("atk1", IN_XB, SERVER_V4, "scope all, port 22", &d);
    let other = lab.probe("atk1", IN_XB, SERVER_V4, 2222, Duration::from_secs(1));
    assert!(other.is_blocked(), "port 2222 from XB: {other:?}\n{}", d());
    assert!(
        lab.can_connect("atk2", ELSEWHERE, SERVER_V4, 2222, Duration::from_secs(2)),
        "port 2222 from elsewhere\n{}",
        d()
    );
    // The server's own connection into XB gets its replies.
    assert!(
        lab.can_connect("srv", SERVER_V4, IN_XB, 8080, Duration::from_secs(2)),
        "the server connecting to XB\n{}",
        d()
    );
    let _ = server_port.kill();
    let _ = attacker_port.kill();
    let _ = server_port.wait();
    let _ = attacker_port.wait();
}

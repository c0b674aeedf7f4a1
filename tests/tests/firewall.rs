//! Bans become packet drops: the real `guardctl daemon` keeps nftables table
//! `inet authguard` in step with the store, checked with real TCP connects.
//!
//! Each test builds its own [`Lab`]: a server namespace (sshd, the daemon,
//! nftables) and attacker namespaces with documentation addresses. Nothing
//! touches the host's network or ruleset: the guard's `guardctl` runs in the
//! server namespace ([`GuardConfig::netns`]), and a `guardctl` that must not
//! reach the server's firewall runs in the lab's empty scratch namespace.

use authguard_e2e::netns::{
    Daemon, Fixture, Lab, Probe, SERVER_V4, SERVER_V6, SSH_PORT, WAIT, WithDaemon, WithSshd,
};
use authguard_e2e::*;
use std::time::{Duration, Instant};

/// The contract: the daemon pushes new bans and unbans within 1 s.
const PUSH: Duration = Duration::from_secs(1);

/// A guard with the nftables backend (the fixture runs its guardctl in the
/// lab's server namespace).
fn firewall_guard(resync: &str) -> GuardConfig {
    Guard::builder()
        .extra("[firewall]")
        .extra("backend = \"nftables\"")
        .extra("ports = [22]")
        .extra(&format!("resync = \"{resync}\""))
}

fn diag(guard: &Guard, daemon: &Daemon, lab: &Lab) -> String {
    format!(
        "--- daemon stderr ---\n{}\n{}{}",
        daemon.stderr(),
        lab.diag(),
        guard.diag()
    )
}

#[test]
fn lab_baseline_sshd_reachable_from_attackers() {
    if !require_root() {
        return;
    }
    // backend "none" (the harness default): this test's nft rules are its own.
    let WithSshd { lab, guard, sshd } = Fixture::lab(&[
        ("atk1", &["203.0.113.10/24", "2001:db8:2::10/64"]),
        ("atk2", &["198.51.100.7/24"]),
        ("atk3", &["2001:db8:3::10/64"]),
    ])
    .guard(Guard::builder())
    .sshd();
    let d = || format!("{}{}{}", sshd.diag(), lab.diag(), guard.diag());

    let v4 = lab.ssh_password(
        "atk1",
        "203.0.113.10",
        SERVER_V4,
        RIGHT_PASSWORD,
        Method::Password,
    );
    assert!(
        v4.logged_in(),
        "IPv4 login from atk1: {}\n{}",
        v4.describe(),
        d()
    );
    let other = lab.ssh_password(
        "atk2",
        "198.51.100.7",
        SERVER_V4,
        RIGHT_PASSWORD,
        Method::KeyboardInteractive,
    );
    assert!(
        other.logged_in(),
        "login from atk2: {}\n{}",
        other.describe(),
        d()
    );
    let v6 = lab.ssh_password(
        "atk3",
        "2001:db8:3::10",
        SERVER_V6,
        RIGHT_PASSWORD,
        Method::Password,
    );
    assert!(
        v6.logged_in(),
        "IPv6 login from atk3: {}\n{}",
        v6.describe(),
        d()
    );
    let v6b = lab.ssh_password(
        "atk1",
        "2001:db8:2::10",
        SERVER_V6,
        RIGHT_PASSWORD,
        Method::Password,
    );
    assert!(
        v6b.logged_in(),
        "IPv6 login from atk1: {}\n{}",
        v6b.describe(),
        d()
    );
    // PAM sees the attackers' real addresses.
    for rhost in [
        "203.0.113.10",
        "198.51.100.7",
        "2001:db8:3::10",
        "2001:db8:2::10",
    ] {
        assert_eq!(sshd.reached_count(rhost), 1, "PAM_RHOST {rhost}\n{}", d());
    }
    // A wrong password from a lab source reaches the store under its address.
    let wrong = lab.ssh_password(
        "atk2",
        "198.51.100.7",
        SERVER_V4,
        WRONG_PASSWORD,
        Method::Password,
    );
    assert!(
        !wrong.logged_in() && !wrong.timed_out,
        "{}",
        wrong.describe()
    );
    let shown = guard.show("198.51.100.7");
    assert!(
        shown["attempts"].as_array().is_some_and(|a| !a.is_empty()),
        "the store did not record the lab source's attempts: {shown:#}"
    );

    // Hand-written nft rules in the server namespace drop exactly what they name.
    let before = Instant::now();
    lab.nft_script(
        "table inet agtest {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    \
         ip saddr 203.0.113.10 tcp dport 22 drop\n    ip6 saddr 2001:db8:3::/64 tcp dport 22 drop\n  }\n}\n",
    );
    let took = lab.blocked_within(
        "atk1",
        "203.0.113.10",
        SERVER_V4,
        "hand-written v4 drop",
        &d,
    );
    assert!(
        took <= PUSH,
        "a rule already in place took {took:?} to bite"
    );
    lab.blocked_within(
        "atk3",
        "2001:db8:3::10",
        SERVER_V6,
        "hand-written v6 drop",
        &d,
    );
    lab.assert_open(
        "atk1",
        "2001:db8:2::10",
        SERVER_V6,
        "not named by the rules",
        &d,
    );
    lab.assert_open(
        "atk2",
        "198.51.100.7",
        SERVER_V4,
        "not named by the rules",
        &d,
    );
    eprintln!("rules in place and checked after {:?}", before.elapsed());
    let out = lab.nft(&["delete", "table", "inet", "agtest"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    lab.open_within("atk1", "203.0.113.10", SERVER_V4, PUSH, "rules deleted", &d);
    lab.open_within(
        "atk3",
        "2001:db8:3::10",
        SERVER_V6,
        PUSH,
        "rules deleted",
        &d,
    );
}

#[test]
fn pam_ban_drops_the_attackers_packets_within_a_second() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd,
        daemon,
    } = Fixture::lab(&[
        ("atk1", &["203.0.113.10/24"]),
        ("atk2", &["203.0.113.20/24"]),
    ])
    .guard(firewall_guard("30s"))
    .sshd()
    .daemon();
    let d = || format!("{}{}", sshd.diag(), diag(&guard, &daemon, &lab));
    lab.assert_open("atk1", "203.0.113.10", SERVER_V4, "before any failure", &d);

    // Wrong passwords until the ban shows in `guardctl list` (at most 6).
    let mut banned_at = None;
    for i in 1..=6 {
        let r = lab.ssh_password(
            "atk1",
            "203.0.113.10",
            SERVER_V4,
            WRONG_PASSWORD,
            Method::Password,
        );
        assert!(
            !r.logged_in() && !r.timed_out,
            "wrong password {i}: {}\n{}",
            r.describe(),
            d()
        );
        if guard.listed("203.0.113.10").is_some() {
            banned_at = Some((i, Instant::now()));
            break;
        }
    }
    let (attempts, banned_at) =
        banned_at.unwrap_or_else(|| panic!("no ban after 6 wrong passwords\n{}", d()));
    let waiting = banned_at.elapsed();
    let took = lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "PAM ban", &d);
    let latency = waiting + took;
    eprintln!(
        "ban listed after wrong password #{attempts}; ban -> drop latency {latency:?} (measured from \
         the ban appearing in `guardctl list`)"
    );
    assert!(
        latency <= PUSH,
        "the ban took {latency:?} to reach the firewall (contract: 1 s)\n{}",
        d()
    );
    let ban = guard.listed("203.0.113.10").expect("listed above");
    assert_eq!(ban["origin"], "pam", "{ban:#}");
    assert!(lab.set_covers("ban4", "203.0.113.10"), "{}", d());

    lab.assert_open(
        "atk2",
        "203.0.113.20",
        SERVER_V4,
        "another source of the same /24",
        &d,
    );
    let other = lab.ssh_password(
        "atk2",
        "203.0.113.20",
        SERVER_V4,
        RIGHT_PASSWORD,
        Method::Password,
    );
    assert!(other.logged_in(), "{}\n{}", other.describe(), d());
    assert!(
        daemon.stderr().contains("authguard: "),
        "the daemon logged no action to stderr\n{}",
        d()
    );
}

#[test]
fn ipv6_ban_drops_the_whole_slash_64() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[
        (
            "atk1",
            &["203.0.113.10/24", "2001:db8:2::10/64", "2001:db8:2::11/64"],
        ),
        ("atk2", &["2001:db8:3::10/64"]),
    ])
    .guard(firewall_guard("30s"))
    .sshd()
    .daemon();
    let d = || diag(&guard, &daemon, &lab);
    for src in ["2001:db8:2::10", "2001:db8:2::11"] {
        lab.assert_open("atk1", src, SERVER_V6, "before the ban", &d);
    }

    guard.guardctl_ok(&["ban", "2001:db8:2::10"]);
    let banned = Instant::now();
    let ban = guard.listed("2001:db8:2::/64").unwrap_or_else(|| {
        panic!(
            "`guardctl ban 2001:db8:2::10` did not list 2001:db8:2::/64: {:#?}",
            guard.list()
        )
    });
    assert_eq!(ban["origin"], "manual", "{ban:#}");
    let waiting = banned.elapsed();
    let took = waiting + lab.blocked_within("atk1", "2001:db8:2::10", SERVER_V6, "/64 ban", &d);
    assert!(
        took <= PUSH,
        "2001:db8:2::10 blocked only {took:?} after `guardctl ban` returned\n{}",
        d()
    );
    // The rest of the /64: blocked by then (the first probe already fails).
    let other = lab.blocked_within("atk1", "2001:db8:2::11", SERVER_V6, "/64 ban", &d);
    assert!(
        other <= Duration::from_millis(100),
        "2001:db8:2::11 connected after 2001:db8:2::10 was blocked ({other:?})\n{}",
        d()
    );
    assert!(lab.set_covers("ban6", "2001:db8:2::ffff"), "{}", d());
    lab.assert_open("atk2", "2001:db8:3::10", SERVER_V6, "another /64", &d);
    lab.assert_open(
        "atk1",
        "203.0.113.10",
        SERVER_V4,
        "the banned host's IPv4",
        &d,
    );
}

#[test]
fn the_admins_open_session_is_never_cut_by_a_ban_typed_in_it() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[("admin", &["198.51.100.7/24"])])
        .guard(firewall_guard("30s"))
        .sshd()
        .daemon();
    let d = || diag(&guard, &daemon, &lab);
    // The admin's session, and guardctl typed inside it (sshd's SSH_CONNECTION).
    let session = lab.hold_session("admin", "198.51.100.7");
    let inside = [("SSH_CONNECTION", Some("198.51.100.7 50022 192.0.2.1 22"))];
    let out = guard.guardctl_env(&inside, &["ban", "198.51.100.0/24", "--for", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("your SSH session"),
        "{}",
        describe_output(&out)
    );
    std::thread::sleep(PUSH);
    assert!(
        session.still_talks(),
        "the refused ban froze the session\n{}",
        d()
    );
    lab.assert_open("admin", "198.51.100.7", SERVER_V4, "after the refusal", &d);

    // --force means it: this host's own bans drop every packet to the
    // guarded ports, so they cut an intruder's open session too.
    let session = lab.hold_session("admin", "198.51.100.7");
    guard.guardctl_ok(&["ban", "198.51.100.0/24", "--for", "1h", "--force"]);
    lab.blocked_within("admin", "198.51.100.7", SERVER_V4, "forced ban", &d);
    assert!(
        !session.still_talks(),
        "a forced ban left the session open\n{}",
        d()
    );
}

#[test]
fn manual_network_ban_and_unban() {
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
        ("atk2", &["203.0.113.20/24"]),
    ])
    .guard(firewall_guard("30s"))
    .sshd()
    .daemon();
    let d = || diag(&guard, &daemon, &lab);
    lab.assert_open("atk1", "198.51.100.7", SERVER_V4, "before the ban", &d);

    guard.guardctl_ok(&["ban", "198.51.100.0/24", "--for", "1h"]);
    let ban = guard
        .listed("198.51.100.0/24")
        .unwrap_or_else(|| panic!("198.51.100.0/24 not listed: {:#?}", guard.list()));
    assert!(ban["expires"].is_string(), "{ban:#}");
    let took = lab.blocked_within("atk1", "198.51.100.7", SERVER_V4, "network ban", &d);
    assert!(took <= PUSH, "network ban enforced after {took:?}\n{}", d());
    let elems = lab.set_elements("ban4_net").unwrap_or_default();
    let elem = elems
        .iter()
        .find(|e| e.covers("198.51.100.7".parse().expect("address")))
        .unwrap_or_else(|| panic!("no ban4_net element covers 198.51.100.7\n{}", d()));
    eprintln!("ban4_net element {elem:?}");
    assert!(
        elem.timeout.is_some_and(|t| (3000..=3600).contains(&t)),
        "a 1h ban's element must time out after the remaining ~3600 s: {elem:?}"
    );
    lab.assert_open(
        "atk2",
        "203.0.113.20",
        SERVER_V4,
        "outside the banned /24",
        &d,
    );

    guard.guardctl_ok(&["unban", "198.51.100.0/24"]);
    let took = lab.open_within("atk1", "198.51.100.7", SERVER_V4, WAIT, "unban", &d);
    assert!(took <= PUSH, "unban lifted after {took:?}\n{}", d());
    assert!(!lab.set_covers("ban4_net", "198.51.100.7"), "{}", d());
}

#[test]
fn flushed_ruleset_is_restored_within_resync() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[("atk1", &["203.0.113.10/24"])])
        .guard(firewall_guard("2s"))
        .sshd()
        .daemon();
    let d = || diag(&guard, &daemon, &lab);
    guard.guardctl_ok(&["ban", "203.0.113.10"]);
    lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "ban", &d);

    let out = lab.nft(&["flush", "ruleset"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let flushed = Instant::now();
    let gone = lab.authguard_table().is_none();
    let open = lab.can_connect(
        "atk1",
        "203.0.113.10",
        SERVER_V4,
        SSH_PORT,
        Duration::from_millis(500),
    );
    eprintln!("right after `nft flush ruleset`: table gone {gone}, banned source connects {open}");
    let waiting = flushed.elapsed();
    let took = waiting + lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "after flush", &d);
    eprintln!("flush -> dropped again: {took:?}");
    let limit = Duration::from_secs(2) + Duration::from_secs(1);
    assert!(
        took <= limit,
        "the flushed ban came back after {took:?} (resync 2s: at most {limit:?})\n{}",
        d()
    );
    assert!(lab.set_covers("ban4", "203.0.113.10"), "{}", d());
}

#[test]
fn daemon_killed_and_ban_made_while_down_is_enforced_after_restart() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        mut daemon,
    } = Fixture::lab(&[
        ("atk1", &["203.0.113.10/24"]),
        ("atk2", &["203.0.113.20/24"]),
    ])
    .guard(firewall_guard("30s"))
    .sshd()
    .daemon();
    // `guardctl check` tells whether the daemon keeps the firewall in step.
    let check =
        |guard: &Guard| String::from_utf8_lossy(&guard.guardctl(&["check"]).stdout).into_owned();
    assert!(
        wait_until(WAIT, || check(&guard).contains("ok   daemon: running")),
        "{}",
        check(&guard)
    );
    daemon.kill9();
    assert!(!daemon.is_running());
    let after = check(&guard);
    assert!(
        after.contains("FAIL daemon: NOT running") && after.contains("authguard.service"),
        "{after}"
    );

    // The ban is made where guardctl's own nft push cannot reach the server's
    // firewall (the lab's empty scratch namespace): only the daemon can.
    let out = guard.guardctl_in(Some(lab.scratch_ns()), &["ban", "203.0.113.10"]);
    assert!(
        out.status.success(),
        "guardctl ban in the scratch namespace: {}",
        describe_output(&out)
    );
    assert!(
        guard.listed("203.0.113.10").is_some(),
        "{:#?}",
        guard.list()
    );
    {
        let d = || diag(&guard, &daemon, &lab);
        lab.assert_open(
            "atk1",
            "203.0.113.10",
            SERVER_V4,
            "daemon down, ban pushed elsewhere: the server's firewall must not know it yet",
            &d,
        );
    }

    let restarted = Instant::now();
    daemon.restart();
    let d = || diag(&guard, &daemon, &lab);
    let waiting = restarted.elapsed();
    let took = waiting + lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "after restart", &d);
    eprintln!("restart -> drop: {took:?}");
    assert!(
        took <= Duration::from_secs(2),
        "ban made while the daemon was down enforced {took:?} after restart (at most 2 s)\n{}",
        d()
    );
    lab.assert_open("atk2", "203.0.113.20", SERVER_V4, "never banned", &d);
}

#[test]
fn expired_ban_lets_the_source_back() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[("atk1", &["203.0.113.10/24"])])
        .guard(firewall_guard("30s"))
        .sshd()
        .daemon();
    let d = || diag(&guard, &daemon, &lab);

    let banned = Instant::now();
    guard.guardctl_ok(&["ban", "203.0.113.10", "--for", "3s"]);
    lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "3s ban", &d);
    let back = lab.open_within(
        "atk1",
        "203.0.113.10",
        SERVER_V4,
        Duration::from_secs(8),
        "3s ban expired",
        &d,
    );
    let total = banned.elapsed();
    eprintln!("3s ban: open again {total:?} after `guardctl ban` (waited {back:?})");
    assert!(
        total >= Duration::from_secs(2),
        "a 3s ban was lifted after only {total:?}\n{}",
        d()
    );
    assert!(
        total <= Duration::from_secs(5),
        "a 3s ban lasted {total:?}\n{}",
        d()
    );
    assert!(
        wait_until(Duration::from_secs(2), || guard
            .listed("203.0.113.10")
            .is_none()),
        "the expired ban is still listed: {:#?}",
        guard.list()
    );
}

#[test]
fn allowed_networks_are_never_dropped() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[
        ("atk1", &["203.0.113.10/24"]),
        ("atk2", &["198.51.100.7/24"]),
    ])
    .guard(firewall_guard("30s").allow(&["127.0.0.1/32", "198.51.100.0/24"]))
    .sshd()
    .daemon();
    let d = || diag(&guard, &daemon, &lab);

    // Allowed in the config: `guardctl ban` refuses, nothing enters ban4.
    let out = guard.guardctl(&["ban", "198.51.100.7"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "ban of an allowed address: {}",
        describe_output(&out)
    );
    assert!(lab.set_covers("allow4", "198.51.100.7"), "{}", d());
    assert!(!lab.set_covers("ban4", "198.51.100.7"), "{}", d());
    lab.assert_open(
        "atk2",
        "198.51.100.7",
        SERVER_V4,
        "allowed in the config",
        &d,
    );

    // Banned first, then allowed at run time: the source gets back in.
    guard.guardctl_ok(&["ban", "203.0.113.10"]);
    lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "before allow add", &d);
    guard.guardctl_ok(&["allow", "add", "203.0.113.0/24"]);
    let took = lab.open_within("atk1", "203.0.113.10", SERVER_V4, WAIT, "allow add", &d);
    assert!(
        took <= PUSH,
        "allow add took {took:?} to reach the firewall\n{}",
        d()
    );
    let table = lab
        .authguard_table()
        .unwrap_or_else(|| panic!("table inet authguard is gone\n{}", d()));
    let ban4 = netns::set_elements(&table, "ban4").unwrap_or_default();
    assert!(
        !ban4
            .iter()
            .any(|e| e.covers("203.0.113.10".parse().expect("address"))),
        "an allowed source is still in ban4: {ban4:?}\n{}",
        d()
    );
    assert!(lab.set_covers("allow4", "203.0.113.10"), "{}", d());
    // The daemon's next full look changes nothing about it.
    std::thread::sleep(Duration::from_millis(600));
    lab.assert_open("atk1", "203.0.113.10", SERVER_V4, "allowed at run time", &d);
}

#[test]
fn daemon_pushes_bans_and_unbans_it_did_not_see_made_within_a_second() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = Fixture::lab(&[
        ("atk1", &["203.0.113.10/24"]),
        ("atk2", &["203.0.113.20/24"]),
    ])
    .guard(firewall_guard("30s"))
    .sshd()
    .daemon();
    let d = || diag(&guard, &daemon, &lab);
    // guardctl runs in the scratch namespace: its own nft push lands there,
    // so only the daemon (polling the store) can change the server's firewall.
    let scratch = Some(lab.scratch_ns());
    for round in 1..=2 {
        let out = guard.guardctl_in(scratch, &["ban", "203.0.113.10"]);
        assert!(
            out.status.success(),
            "ban (round {round}): {}",
            describe_output(&out)
        );
        let banned = Instant::now();
        let took = banned.elapsed()
            + lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "daemon push", &d);
        eprintln!("round {round}: store ban -> drop by the daemon: {took:?}");
        assert!(
            took <= PUSH,
            "round {round}: the daemon pushed the ban after {took:?}\n{}",
            d()
        );

        let out = guard.guardctl_in(scratch, &["unban", "203.0.113.10"]);
        assert!(
            out.status.success(),
            "unban (round {round}): {}",
            describe_output(&out)
        );
        let took = lab.open_within("atk1", "203.0.113.10", SERVER_V4, WAIT, "daemon lift", &d);
        eprintln!("round {round}: store unban -> open by the daemon: {took:?}");
        assert!(
            took <= PUSH,
            "round {round}: the daemon lifted the ban after {took:?}\n{}",
            d()
        );
    }
    lab.assert_open("atk2", "203.0.113.20", SERVER_V4, "never banned", &d);
}

/// Wrong passwords from `source` until the PAM module bans it (max_failures 1:
/// the first is admitted, the second refused and banned). Returns the ban.
fn get_banned(lab: &Lab, guard: &Guard, source: &str, d: &dyn Fn() -> String) -> Value {
    for _ in 0..3 {
        let r = lab.ssh_password("atk1", source, SERVER_V4, WRONG_PASSWORD, Method::Password);
        assert!(!r.logged_in(), "{}\n{}", r.describe(), d());
        if let Some(ban) = guard.listed(source) {
            return ban;
        }
    }
    panic!("{source} not banned after 3 wrong passwords\n{}", d());
}

#[test]
fn third_ban_in_the_window_is_one_recidive_ban_on_all_ports() {
    if !require_root() {
        return;
    }
    // Key-only signaling off: with it, a past offender's later passwords are
    // refused unchecked and never earn the repeat bans this test replays.
    let mut config = firewall_guard("30s")
        .max_failures(1)
        .extra("[keyonly]")
        .extra("mode = \"off\"");
    config.ban_time = "2s".into();
    let WithDaemon {
        lab,
        guard,
        sshd,
        daemon,
    } = Fixture::lab(&[("atk1", &["203.0.113.10/24"])])
        .guard(config)
        .sshd()
        .daemon();
    let d = || format!("{}{}", sshd.diag(), diag(&guard, &daemon, &lab));
    let src = "203.0.113.10";
    // Nothing listens on 2222: an open path answers with a reset, a drop is silence.
    let other_port = |t| lab.probe("atk1", src, SERVER_V4, 2222, t);
    assert_eq!(
        other_port(Duration::from_secs(2)),
        Probe::Refused,
        "{}",
        d()
    );

    // Two short bans (2 s, then 4 s): each closes port 22 only, then ends.
    for (level, length) in [(1, "2s"), (2, "4s")] {
        let ban = get_banned(&lab, &guard, src, &d);
        assert_eq!(
            (ban["level"].as_u64(), ban["origin"].as_str()),
            (Some(level), Some("pam")),
            "{ban:#}"
        );
        lab.blocked_within(
            "atk1",
            src,
            SERVER_V4,
            &format!("ban {level} ({length})"),
            &d,
        );
        assert_eq!(
            other_port(Duration::from_secs(2)),
            Probe::Refused,
            "a ports ban leaves port 2222 alone\n{}",
            d()
        );
        lab.open_within(
            "atk1",
            src,
            SERVER_V4,
            Duration::from_secs(8),
            "after the short ban",
            &d,
        );
    }

    // The third within recidive.window (7d) is the long ban, on every port.
    let ban = get_banned(&lab, &guard, src, &d);
    assert_eq!(
        (
            ban["origin"].as_str(),
            ban["scope"].as_str(),
            ban["level"].as_u64()
        ),
        (Some("recidive"), Some("all"), Some(3)),
        "{ban:#}"
    );
    let days = |b: &Value| {
        let secs = |k: &str| {
            let out = std::process::Command::new("date")
                .args(["-u", "-d", b[k].as_str().unwrap(), "+%s"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<i64>()
                .unwrap()
        };
        (secs("expires") - secs("since")) / 86_400
    };
    assert_eq!(days(&ban), 30, "{ban:#}");
    let active: Vec<Value> = guard
        .list()
        .into_iter()
        .filter(|b| b["address"] == src)
        .collect();
    assert_eq!(active.len(), 1, "one active ban, not three: {active:#?}");
    lab.blocked_within("atk1", src, SERVER_V4, "recidive ban", &d);
    assert!(lab.set_covers("ban4_all", src), "{}", d());
    assert_eq!(
        other_port(Duration::from_secs(2)),
        Probe::TimedOut,
        "every port is dropped\n{}",
        d()
    );
}

#[test]
fn reject_action_answers_banned_sources_with_a_reset() {
    if !require_root() {
        return;
    }
    let WithDaemon {
        lab,
        guard,
        sshd,
        daemon,
    } = Fixture::lab(&[("atk1", &["203.0.113.10/24"])])
        .guard(
            Guard::builder()
                .extra("[firewall]")
                .extra("backend = \"nftables\"")
                .extra("action = \"reject\""),
        )
        .sshd()
        .daemon();
    let d = || format!("{}{}", sshd.diag(), diag(&guard, &daemon, &lab));
    let src = "203.0.113.10";
    let to_ssh = || lab.probe("atk1", src, SERVER_V4, SSH_PORT, Duration::from_secs(2));
    assert_eq!(to_ssh(), Probe::Connected, "{}", d());
    guard.guardctl_ok(&["ban", src]);
    assert!(
        wait_until(WAIT, || to_ssh() == Probe::Refused),
        "a rejected source gets a TCP reset, not silence\n{}",
        d()
    );
}

/// Issue 5's promise end to end: a scanner that only tries a wrong key never
/// reaches PAM, yet sshd's log gets it banned, and the ban holds at the
/// firewall and at the PAM module alike.
#[test]
fn a_key_only_scanner_is_banned_from_sshds_log_alone() {
    if !require_root() {
        return;
    }
    let WithSshd { lab, guard, sshd } = Fixture::lab(&[
        ("atk1", &["203.0.113.10/24"]),
        ("atk2", &["198.51.100.7/24"]),
    ])
    .guard(firewall_guard("30s"))
    .sshd();
    guard.set_config(|c| {
        c.extra.push("[sshd_log]".into());
        c.extra
            .push(format!("source = \"{}\"", sshd.sshd_log_path().display()));
        c.extra.push("pam_module = \"active\"".into());
    });
    let daemon = Daemon::start(&guard, &lab);
    let d = || format!("{}{}", diag(&guard, &daemon, &lab), sshd.diag());
    let key = guard.dir().join("scanner_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(keygen.status.success(), "ssh-keygen: {keygen:?}");

    let mut banned_after = None;
    for attempt in 1..=8 {
        let r = lab.ssh_key_only("atk1", "203.0.113.10", SERVER_V4, &key);
        assert!(!r.logged_in(), "attempt {attempt}: {}", r.describe());
        let listed = wait_until(Duration::from_millis(500), || {
            guard.listed("203.0.113.10").is_some()
        });
        if listed {
            banned_after = Some(attempt);
            break;
        }
    }
    let attempts = banned_after.unwrap_or_else(|| panic!("not banned from the log\n{}", d()));
    assert_eq!(
        attempts,
        5,
        "max_failures = 5 key-only connections\n{}",
        d()
    );
    let ban = guard.listed("203.0.113.10").expect("listed");
    assert_eq!(ban["origin"], "sshd-log", "{ban:#}");
    assert_eq!(
        sshd.reached_count("203.0.113.10"),
        0,
        "a key scanner never reaches PAM's auth stack\n{}",
        d()
    );

    let took = lab.blocked_within("atk1", "203.0.113.10", SERVER_V4, "log ban", &d);
    assert!(
        took <= PUSH,
        "the log ban reached the firewall after {took:?}\n{}",
        d()
    );
    lab.assert_open("atk2", "198.51.100.7", SERVER_V4, "another source", &d);

    // PAM enforces it too: with the firewall gone, even the right password
    // from the banned source is refused before any password check.
    lab.nft(&["flush", "ruleset"]);
    let r = lab.ssh_password(
        "atk1",
        "203.0.113.10",
        SERVER_V4,
        RIGHT_PASSWORD,
        Method::Password,
    );
    assert!(
        !r.logged_in(),
        "the banned source logged in: {}",
        r.describe()
    );
    assert_eq!(
        sshd.reached_count("203.0.113.10"),
        0,
        "the PAM module let the banned source's password through\n{}",
        d()
    );
}

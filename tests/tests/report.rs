//! `guardctl report` over a real sshd: the offender's attempts, users and
//! UTC timestamps with the raw sshd lines the log follower stored, and
//! nothing of a second offender, and never a password; the abuse contact
//! from a whois server on loopback answering as RIPE does, then from the
//! store's cache.

use authguard_e2e::abuse::{WhoisServer, ripe_reply};
use authguard_e2e::*;
use std::time::Duration;

const SECRET: &str = "hunter2-never-in-a-report";

#[test]
fn a_report_carries_one_offenders_evidence_and_nothing_else() {
    if !require_root() {
        return;
    }
    let guard = Guard::builder().max_failures(50).start();
    let sshd = Sshd::start(&guard);
    guard.set_config(|c| {
        c.extra.push("[sshd_log]".into());
        c.extra
            .push(format!("source = \"{}\"", sshd.sshd_log_path().display()));
        c.extra.push("pam_module = \"active\"".into());
    });
    let _daemon = HostDaemon::start(&guard);
    // The follower starts at the end of the log: let it open the file first.
    std::thread::sleep(Duration::from_millis(500));
    // root is a real account of this host: guessed or not, its name is redacted.
    for user in ["admin", "test", "admin", "root"] {
        let r = ssh_password(sshd.port(), "127.0.0.2", user, SECRET, Method::Password);
        assert!(!r.logged_in(), "{}", r.describe());
    }
    let r = ssh_password(sshd.port(), "127.0.0.3", "oracle", SECRET, Method::Password);
    assert!(!r.logged_in(), "{}", r.describe());
    assert!(
        wait_until(Duration::from_secs(5), || guard.log_attempts("127.0.0.2")
            >= 4
            && guard.log_attempts("127.0.0.3") >= 1),
        "the daemon did not record the log lines: {:#}\n{}",
        guard.show("127.0.0.2"),
        sshd.diag()
    );

    let out = guard.guardctl_ok(&["report", "127.0.0.2", "--to", "abuse@isp.example"]);
    let report = String::from_utf8_lossy(&out.stdout);
    for want in [
        "To: abuse@isp.example",
        "Subject: SSH login attacks from 127.0.0.2",
        "Offending address: 127.0.0.2",
        "User names tried: admin (",
        "test (",
        "Failed password for invalid user admin from 127.0.0.2 port ",
        "pam_authguard: failed password authentication for user admin from 127.0.0.2",
        "[local account] (",
        "Failed password for [local account] from 127.0.0.2 port ",
        "each time in UTC, then in ",
    ] {
        assert!(
            report.contains(want),
            "missing {want:?} in the report:\n{report}"
        );
    }
    let stamped = report
        .lines()
        .filter(|l| l.len() > 20 && l.as_bytes()[4] == b'-' && l[..20].ends_with('Z'))
        .count();
    assert!(stamped >= 3, "log excerpts need UTC timestamps:\n{report}");
    assert!(
        !report.contains("127.0.0.3"),
        "another offender's address:\n{report}"
    );
    assert!(
        !report.contains("oracle"),
        "another offender's user:\n{report}"
    );
    assert!(
        !report.contains(SECRET),
        "a password in the report:\n{report}"
    );
    assert!(
        !report.contains("for root from") && !report.contains("user root"),
        "a local account's name in the report:\n{report}"
    );

    let xarf = guard.guardctl_ok(&[
        "report",
        "127.0.0.2",
        "--format",
        "xarf",
        "--to",
        "abuse@isp.example",
    ]);
    let xarf = String::from_utf8_lossy(&xarf.stdout);
    assert!(
        xarf.contains("Report-Type: login-attack") && xarf.contains("Source: 127.0.0.2"),
        "{xarf}"
    );
    assert!(
        !xarf.contains("127.0.0.3") && !xarf.contains(SECRET),
        "{xarf}"
    );

    // No --to: whois names the contact, once; the second report reads the cache.
    let whois = WhoisServer::start(|_| ripe_reply("abuse@isp.example"));
    guard.set_config(|c| {
        c.extra.push("[report]".into());
        c.extra
            .push(format!("whois_server = \"{}\"", whois.address()));
    });
    for _ in 0..2 {
        let out = guard.guardctl_ok(&["report", "127.0.0.2"]);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("To: abuse@isp.example"), "{report}");
    }
    assert_eq!(
        whois.asked(),
        1,
        "the second report asked whois again instead of the store's cache"
    );

    let nothing = guard.guardctl(&["report", "198.51.100.1", "--to", "x@y.example"]);
    assert_eq!(
        nothing.status.code(),
        Some(1),
        "{}",
        describe_output(&nothing)
    );
}

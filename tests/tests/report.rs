//! `guardctl report` over a real sshd: the offender's attempts, users and
//! UTC timestamps with the raw sshd lines the log follower stored, and
//! nothing of a second offender, and never a password; the abuse contact
//! from a whois server on loopback answering as RIPE does, then from the
//! store's cache.

use authguard_e2e::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A reply in RIPE's shape, for a network whose abuse desk is abuse@isp.example.
const RIPE_REPLY: &str = "% This is the RIPE Database query service.

% Abuse contact for '127.0.0.0 - 127.255.255.255' is 'abuse@isp.example'

inetnum:        127.0.0.0 - 127.255.255.255
netname:        LOOPBACK-TEST
source:         RIPE
";

/// A whois server on loopback: answers every question with `reply` and
/// counts the questions. Returns its port and the count.
fn whois_server(reply: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a whois port");
    let port = listener.local_addr().expect("local addr").port();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut byte = [0u8; 1];
            while conn.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {}
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    (port, asked)
}

const SECRET: &str = "hunter2-never-in-a-report";

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let _daemon = Daemon(
        Command::new(guardctl_path())
            .arg("--config")
            .arg(guard.config_path())
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("guardctl daemon"),
    );
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
    let (port, asked) = whois_server(RIPE_REPLY);
    guard.set_config(|c| {
        c.extra.push("[report]".into());
        c.extra.push(format!("whois_server = \"127.0.0.1:{port}\""));
    });
    for _ in 0..2 {
        let out = guard.guardctl_ok(&["report", "127.0.0.2"]);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("To: abuse@isp.example"), "{report}");
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
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

//! The journal follower against a real systemd-journald, started by the
//! test in a private mount namespace (tmpfs over /run/log,
//! /run/systemd/journal and /var/log/journal there, so the host's journal,
//! if any, is never touched). sshd's lines reach journald through its
//! syslog socket, as sshd writes them; `guardctl daemon` follows them with
//! `[sshd_log] source = "journal"` inside the same namespace.

use authguard_e2e::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// systemd-journald in its own mount namespace; killed on drop.
struct Journald {
    child: Child,
}

impl Journald {
    fn start() -> Journald {
        let script = "set -e
            mkdir -p /run/log /run/systemd/journal
            mount -t tmpfs tmpfs /run/log
            mount -t tmpfs tmpfs /run/systemd/journal
            if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
            mkdir -p /usr/lib/openssh
            mount -t tmpfs tmpfs /usr/lib/openssh
            cp /usr/bin/logger /usr/lib/openssh/sshd-session
            exec /lib/systemd/systemd-journald";
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare sh (util-linux)");
        let journald = Journald { child };
        let up = wait_until(Duration::from_secs(10), || {
            journald
                .inside(&["test", "-S", "/run/systemd/journal/dev-log"])
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            up,
            "systemd-journald did not open its syslog socket within 10 s"
        );
        journald
    }

    /// A command run inside journald's mount namespace.
    fn inside(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.child.id().to_string(), "-m", "--"])
            .args(argv);
        cmd
    }

    /// Logs `message` as sshd (pid 4242) through journald's syslog socket,
    /// from OpenSSH's own path: journald records the sender's executable
    /// (`_EXE`), and authguard believes only OpenSSH's binaries. The
    /// sender is `logger`, copied (in this namespace only, over a tmpfs)
    /// to `/usr/lib/openssh/sshd-session`.
    fn sshd_says(&self, message: &str) {
        let out = self
            .inside(&[
                "/usr/lib/openssh/sshd-session",
                "-u",
                "/run/systemd/journal/dev-log",
                "-t",
                "sshd",
                "--id=4242",
                "-p",
                "auth.info",
                message,
            ])
            .output()
            .expect("logger");
        assert!(out.status.success(), "logger: {out:?}");
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `guardctl daemon` inside journald's namespace; killed on drop.
struct Daemon(Child);

impl Daemon {
    fn start(journald: &Journald, guard: &Guard) -> Daemon {
        let mut cmd = journald.inside(&[]);
        cmd.arg(guardctl_path())
            .arg("--config")
            .arg(guard.config_path())
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(guard.dir().join("daemon.err"))
                    .expect("daemon.err"),
            );
        Daemon(cmd.spawn().expect("guardctl daemon"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn closes(journald: &Journald, source: &str, ports: std::ops::Range<u16>) {
    for port in ports {
        journald.sshd_says(&format!(
            "Connection closed by authenticating user root {source} port {port} [preauth]"
        ));
    }
}

fn daemon_log(guard: &Guard) -> String {
    std::fs::read_to_string(guard.dir().join("daemon.err")).unwrap_or_default()
}

fn journal_text(journald: &Journald) -> String {
    let out = journald
        .inside(&[
            "journalctl",
            "--no-pager",
            "-o",
            "short-iso",
            "SYSLOG_IDENTIFIER=sshd",
        ])
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn journal_lines_ban_and_a_restart_neither_loses_nor_repeats_them() {
    if !require_root() {
        return;
    }
    let journald = Journald::start();
    let guard = Guard::builder()
        .extra("[sshd_log]")
        .extra("source = \"journal\"")
        .extra("pam_module = \"active\"")
        .start();

    let daemon = Daemon::start(&journald, &guard);
    closes(&journald, "203.0.113.50", 40_000..40_005);
    let banned = wait_until(Duration::from_secs(5), || {
        guard.listed("203.0.113.50").is_some()
    });
    assert!(
        banned,
        "not banned from the journal: {:#?}\n--- daemon ---\n{}\n--- journal ---\n{}",
        guard.list(),
        daemon_log(&guard),
        journal_text(&journald)
    );
    let ban = guard.listed("203.0.113.50").expect("listed");
    assert_eq!(ban["origin"], "sshd-log", "{ban:#}");

    // Three closes seen, then the daemon dies; two more are logged while it
    // is down. After a restart the cursor resumes: all five count, once each.
    closes(&journald, "198.51.100.60", 41_000..41_003);
    assert!(wait_until(Duration::from_secs(5), || guard
        .log_attempts("198.51.100.60")
        == 3));
    drop(daemon);
    closes(&journald, "198.51.100.60", 41_003..41_005);
    let _daemon = Daemon::start(&journald, &guard);
    let banned = wait_until(Duration::from_secs(5), || {
        guard.listed("198.51.100.60").is_some()
    });
    assert!(
        banned,
        "the lines logged while the daemon was down were lost: {:#?}",
        guard.show("198.51.100.60")
    );
    assert_eq!(
        guard.log_attempts("198.51.100.60"),
        5,
        "{:#}",
        guard.show("198.51.100.60")
    );
    assert_eq!(
        guard.log_attempts("203.0.113.50"),
        5,
        "the first source's lines were read twice"
    );
}

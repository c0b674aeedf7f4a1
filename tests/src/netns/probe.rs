//! Real TCP connects from an attacker's source address ([`Probe`]), and the
//! waits built on them: until blocked, until open, asserted within bounds.
//!
//! The firewall's contents are read in `nft`; ssh logins are in `ssh`.

use super::{Lab, SSH_PORT};
use crate::process::run_with_timeout;
use std::time::{Duration, Instant};

/// How long a test waits for a change to reach the firewall before it
/// gives up (the promise itself is checked against a shorter bound).
pub const WAIT: Duration = Duration::from_secs(6);

/// How long one probe connect may take before it counts as dropped. Packets
/// between namespaces on one bridge take microseconds; this only has to
/// cover scheduling hiccups on a loaded machine.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// The longer probe that confirms a "blocked" verdict before it is believed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(1);

/// `/usr/bin/python3` (not a pyenv shim: one probe must start in milliseconds).
const PYTHON: &str = "/usr/bin/python3";

/// TCP connect from a chosen source; exit codes say what happened.
const PROBE_SCRIPT: &str = r#"
import socket, sys
src, dst, port, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
try:
    s.bind((src, 0))
except OSError as e:
    print("bind", src, e)
    sys.exit(10)
s.settimeout(t)
try:
    s.connect((dst, port))
except TimeoutError:
    print("timeout")
    sys.exit(3)
except ConnectionRefusedError:
    print("refused")
    sys.exit(4)
except OSError as e:
    print("error", e)
    sys.exit(5)
print("connected")
"#;

/// What one TCP connect attempt from an attacker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The handshake completed.
    Connected,
    /// A TCP reset came back (nothing listening, or `action = "reject"`).
    Refused,
    /// No answer within the probe's timeout: the SYN was dropped.
    TimedOut,
    /// Any other error (unreachable network, ICMP error): lab plumbing trouble.
    Failed(String),
}

impl Probe {
    /// Refused or timed out: what a firewall drop or reject looks like.
    pub fn is_blocked(&self) -> bool {
        matches!(self, Probe::Refused | Probe::TimedOut)
    }
}

impl Lab {
    /// One TCP connect from `source` in `attacker`'s namespace to `dest:port`,
    /// given up after `timeout`. Panics when `source` cannot be bound (not
    /// the attacker's address): that is a test bug, never "blocked".
    pub fn probe(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> Probe {
        let port = port.to_string();
        let secs = format!("{:.3}", timeout.as_secs_f64());
        let mut cmd = self.exec_in(
            attacker,
            &[PYTHON, "-c", PROBE_SCRIPT, source, dest, &port, &secs],
        );
        let f = run_with_timeout(&mut cmd, None, timeout + Duration::from_secs(10));
        assert!(!f.timed_out, "the probe itself hung: {}", f.describe());
        match f.code() {
            Some(0) => Probe::Connected,
            Some(3) => Probe::TimedOut,
            Some(4) => Probe::Refused,
            Some(5) => Probe::Failed(f.stdout.trim().to_owned()),
            _ => panic!(
                "probe from {source} ({attacker}) to {dest}:{port} broke: {}",
                f.describe()
            ),
        }
    }

    /// True when a TCP connect from `source` to `dest:port` completes within `timeout`.
    pub fn can_connect(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> bool {
        self.probe(attacker, source, dest, port, timeout) == Probe::Connected
    }

    /// Probes every 20 ms (each probe given up after [`PROBE_TIMEOUT`]) until
    /// a connect fails (refused or timed out), confirmed by a second probe
    /// of 1 s. Returns the time from the call to the *start* of the first
    /// failing probe, or None if the source could still connect after
    /// `timeout`. The block was in place when that probe's SYN left, one
    /// interpreter start-up (~20 ms) after its start, and not when the
    /// previous probe's SYN left: the result is the block's latency within
    /// about one probe round (~20–40 ms). The call itself lasts ≥ 1 s longer
    /// (the confirmation). Panics on any other connect error.
    pub fn wait_until_blocked(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            let at = start.elapsed();
            match self.probe(attacker, source, dest, port, PROBE_TIMEOUT) {
                Probe::Connected => {}
                p if p.is_blocked() => {
                    match self.probe(attacker, source, dest, port, CONFIRM_TIMEOUT) {
                        p if p.is_blocked() => return Some(at),
                        Probe::Connected => {}
                        Probe::Failed(e) => {
                            panic!("{source} -> {dest}:{port}: {e}\n{}", self.diag())
                        }
                        _ => unreachable!("blocked probes are handled above"),
                    }
                }
                Probe::Failed(e) => panic!("{source} -> {dest}:{port}: {e}\n{}", self.diag()),
                _ => unreachable!("blocked probes are handled above"),
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Probes every 20 ms until a connect from `source` to `dest:port`
    /// completes; returns the time from the call to that success, or None
    /// if it was still blocked after `timeout`. Panics on any connect error
    /// other than refused or timed out.
    pub fn wait_until_open(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            match self.probe(attacker, source, dest, port, PROBE_TIMEOUT) {
                Probe::Connected => return Some(start.elapsed()),
                Probe::Failed(e) => panic!("{source} -> {dest}:{port}: {e}\n{}", self.diag()),
                _ => {}
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts `source` (in `attacker`) can open a TCP connection to
    /// `dest:22` now; `why` and `diag` go into the failure message.
    pub fn assert_open(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        why: &str,
        diag: &dyn Fn() -> String,
    ) {
        let p = self.probe(attacker, source, dest, SSH_PORT, Duration::from_secs(2));
        assert_eq!(
            p,
            Probe::Connected,
            "{source} -> {dest}:22 ({why})\n{}",
            diag()
        );
    }

    /// Waits until `source` can no longer reach `dest:22`; panics if not
    /// within [`WAIT`]; returns how long it took.
    pub fn blocked_within(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        what: &str,
        diag: &dyn Fn() -> String,
    ) -> Duration {
        let took = self
            .wait_until_blocked(attacker, source, dest, SSH_PORT, WAIT)
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {source} -> {dest}:22 still connects after {WAIT:?}\n{}",
                    diag()
                )
            });
        eprintln!("{what}: {source} -> {dest}:22 blocked after {took:?}");
        took
    }

    /// Waits until `source` reaches `dest:22` again; panics if not within
    /// `timeout`; returns how long it took.
    pub fn open_within(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        timeout: Duration,
        what: &str,
        diag: &dyn Fn() -> String,
    ) -> Duration {
        let took = self
            .wait_until_open(attacker, source, dest, SSH_PORT, timeout)
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {source} -> {dest}:22 still blocked after {timeout:?}\n{}",
                    diag()
                )
            });
        eprintln!("{what}: {source} -> {dest}:22 open again after {took:?}");
        took
    }
}

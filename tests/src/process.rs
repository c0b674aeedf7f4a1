//! Child processes the harness runs: each bounded in time, in its own
//! process group, its output collected ([`Finished`]).
//!
//! What to run lives with the callers (guard, sshd, clients, lab); the
//! signals themselves go through `sys`.

use crate::sys::{Signal, kill_group};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one client run (ssh, pamtester, guardctl) may take before it is killed.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);

/// A finished child process.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
    /// True when it had to be killed after the timeout.
    pub timed_out: bool,
}

impl Finished {
    /// Exit code, or None when it died by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that ended it, if any.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {:?}{} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            if self.timed_out {
                " (KILLED: timed out)"
            } else {
                ""
            },
            self.elapsed,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` (stdin from `input`, or /dev/null) in its own process group,
/// killing the group if it runs longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Finished {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            kill_group(child.id(), Signal::Kill);
            break child.wait().expect("wait for killed child");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    Finished {
        status,
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed,
        timed_out,
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `cmd` as [`run_with_timeout`] does and panics unless it exits 0.
pub(crate) fn run_ok(cmd: &mut Command) -> Finished {
    let shown = format!("{cmd:?}");
    let f = run_with_timeout(cmd, None, CLIENT_TIMEOUT);
    assert!(f.status.success(), "{shown} failed: {}", f.describe());
    f
}

/// Reads the first line of a child's stdout (used to wait for a helper to be ready).
pub fn read_line_with_timeout<R: Read + Send + 'static>(
    pipe: R,
    timeout: Duration,
) -> Option<(String, BufReader<R>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut line = String::new();
        let ok = r.read_line(&mut line).is_ok_and(|n| n > 0);
        let _ = tx.send(ok.then_some((line, r)));
    });
    rx.recv_timeout(timeout).ok().flatten()
}

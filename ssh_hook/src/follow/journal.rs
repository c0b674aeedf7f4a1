//! Following systemd's journal: `journalctl --follow --output=json` for
//! sshd's identifiers, resumed after a saved cursor, so a restart neither
//! loses nor repeats an entry.
//!
//! A reader thread moves journalctl's lines into a bounded channel; the
//! daemon drains it without ever blocking. If journalctl exits (journald
//! restarted), it is started again after the last cursor handed out.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use crate::framing::SSHD_PROGRAMS;

/// Lines buffered between journalctl and the daemon.
const CHANNEL: usize = 20_000;

/// How long to wait before starting journalctl again after it exited.
const RESTART_AFTER: Duration = Duration::from_secs(2);

/// Follows the journal through a journalctl child process.
#[derive(Debug)]
pub struct JournalFollower {
    journalctl: String,
    cursor: Option<String>,
    /// Without a cursor: entries since this Unix time (when following began).
    since: u64,
    child: Option<Child>,
    lines: Option<Receiver<Vec<u8>>>,
    retry_at: Option<Instant>,
}

impl JournalFollower {
    /// Follows from `cursor` (the entry after it), or from now when `None`
    /// (entries logged while journalctl starts are not missed).
    /// `journalctl` is the program to run (`journalctl`).
    pub fn new(journalctl: &str, cursor: Option<String>) -> JournalFollower {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        JournalFollower {
            journalctl: journalctl.to_owned(),
            cursor,
            since,
            child: None,
            lines: None,
            retry_at: None,
        }
    }

    /// The cursor of the last entry handed out (`None` before the first).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Hands out up to `max_lines` JSON lines; returns how many. Never blocks.
    pub fn poll(
        &mut self,
        max_lines: usize,
        mut line: impl FnMut(&[u8]),
    ) -> std::io::Result<usize> {
        self.ensure_running()?;
        let mut handed = 0;
        while handed < max_lines {
            let Some(lines) = &self.lines else { break };
            match lines.try_recv() {
                Ok(json) => {
                    if let Some(cursor) = cursor_of(&json) {
                        self.cursor = Some(cursor.to_owned());
                    }
                    line(&json);
                    handed += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.stopped();
                    break;
                }
            }
        }
        Ok(handed)
    }

    fn ensure_running(&mut self) -> std::io::Result<()> {
        if self.child.is_some() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        let mut cmd = Command::new(&self.journalctl);
        cmd.args(["--follow", "--output=json", "--no-pager", "--all"]);
        match &self.cursor {
            Some(cursor) => cmd.arg(format!("--after-cursor={cursor}")),
            None => cmd.arg(format!("--since=@{}", self.since)),
        };
        cmd.args(
            SSHD_PROGRAMS
                .iter()
                .map(|id| format!("SYSLOG_IDENTIFIER={id}")),
        );
        let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn() {
            Ok(child) => child,
            Err(e) => {
                self.retry_at = Some(Instant::now() + RESTART_AFTER);
                return Err(e);
            }
        };
        let stdout = child.stdout.take();
        let (send, receive) = sync_channel(CHANNEL);
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).split(b'\n') {
                    let Ok(line) = line else { break };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        self.child = Some(child);
        self.lines = Some(receive);
        self.retry_at = None;
        Ok(())
    }

    /// journalctl ended: reap it, and start it again a little later.
    fn stopped(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.lines = None;
        self.retry_at = Some(Instant::now() + RESTART_AFTER);
    }
}

impl Drop for JournalFollower {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `__CURSOR` of a journal JSON line (cursors hold no quotes).
fn cursor_of(json: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"__CURSOR\":\"";
    let start = json.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = json[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&json[start..start + len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cursor() {
        let line = br#"{"MESSAGE":"x","__CURSOR":"s=1;i=2;b=3","_PID":"7"}"#;
        assert_eq!(cursor_of(line), Some("s=1;i=2;b=3"));
        assert_eq!(cursor_of(b"{}"), None);
    }
}

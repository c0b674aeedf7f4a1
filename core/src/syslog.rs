//! One line per decision to syslog (facility authpriv), written to the
//! `/dev/log` datagram socket in RFC 3164 framing with our own ident.
//!
//! Safe Rust over `UnixDatagram` instead of libc's `syslog(3)`: inside sshd,
//! `openlog` would change sshd's own ident, and `syslog(3)` would log as "sshd".
//! A fresh socket per line: nothing is kept across sshd's forks.
//!
//! Attacker-controlled text (user names, host names) goes through
//! [`untrusted`] so that it can never start a new line or forge a field.

use crate::time;
use std::borrow::Cow;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Syslog severities authguard uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Store faults, config errors.
    Error = 3,
    /// Degraded but working (fail-open admissions).
    Warning = 4,
    /// Bans and refusals.
    Notice = 5,
    /// Admissions, successes.
    Info = 6,
}

/// LOG_AUTHPRIV, as in `<syslog.h>`.
const FACILITY_AUTHPRIV: u8 = 10;
/// The longest a log line may wait for room in the syslog socket's queue.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(20);
/// Longest message sent; the rest is cut (a 10 KB user name must not make a 10 KB log line).
const MAX_MESSAGE: usize = 1024;

/// Writes log lines under one ident to one socket.
#[derive(Debug, Clone)]
pub struct Logger {
    socket: PathBuf,
    ident: &'static str,
    also_stderr: bool,
}

impl Logger {
    /// A logger for `ident` (`pam_authguard`, `authguard`) writing to `socket`.
    pub fn new(socket: &Path, ident: &'static str) -> Self {
        Logger {
            socket: socket.to_owned(),
            ident,
            also_stderr: false,
        }
    }

    /// Also prints each line to stderr (for `guardctl` run by a person or by systemd).
    pub fn with_stderr(mut self) -> Self {
        self.also_stderr = true;
        self
    }

    /// Sends one line. Never fails: logging must not change a decision.
    pub fn log(&self, severity: Severity, message: &str) {
        let message = truncate(message, MAX_MESSAGE);
        let message = message.replace(['\n', '\r', '\0'], " ");
        if self.also_stderr {
            eprintln!("{}: {message}", self.ident);
        }
        let line = frame(
            severity,
            self.ident,
            std::process::id(),
            time::now(),
            &message,
        );
        if let Ok(sock) = UnixDatagram::unbound() {
            // A stalled syslog daemon must never stall sshd: a full socket
            // queue blocks a send, so bound it and drop the line instead.
            let _ = sock.set_write_timeout(Some(SEND_TIMEOUT));
            let _ = sock.send_to(line.as_bytes(), &self.socket);
        }
    }
}

/// RFC 3164 framing: `<PRI>Mmm dd hh:mm:ss ident[pid]: message` (UTC).
pub fn frame(
    severity: Severity,
    ident: &str,
    pid: u32,
    at: time::Timestamp,
    message: &str,
) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, month, day, h, m, s) = time::civil(at);
    let pri = FACILITY_AUTHPRIV * 8 + severity as u8;
    let month = MONTHS[(month as usize).saturating_sub(1) % 12];
    format!("<{pri}>{month} {day:>2} {h:02}:{m:02}:{s:02} {ident}[{pid}]: {message}")
}

/// Makes text from the network safe to embed in a log line or a table:
/// control characters, backslashes, quotes and invalid UTF-8 become `\xNN`
/// escapes, so nothing an attacker sends can end a line or fake a field.
pub fn untrusted(bytes: &[u8]) -> Cow<'_, str> {
    let clean = |b: u8| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"';
    match std::str::from_utf8(bytes) {
        Ok(s) if s.bytes().all(clean) => Cow::Borrowed(s),
        Ok(s) => {
            let mut out = String::with_capacity(s.len() + 8);
            for ch in s.chars() {
                if ch.is_ascii() && !clean(ch as u8) {
                    out.push_str(&format!("\\x{:02x}", ch as u32));
                } else if ch.is_control() {
                    out.push_str(&format!("\\u{{{:x}}}", ch as u32));
                } else {
                    out.push(ch);
                }
            }
            Cow::Owned(out)
        }
        Err(_) => Cow::Owned(
            bytes
                .iter()
                .map(|&b| {
                    if clean(b) {
                        (b as char).to_string()
                    } else {
                        format!("\\x{b:02x}")
                    }
                })
                .collect(),
        ),
    }
}

fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_as_rfc3164_authpriv() {
        let line = frame(
            Severity::Notice,
            "pam_authguard",
            42,
            1_795_549_801,
            "ban 203.0.113.7 for 10m",
        );
        assert_eq!(
            line,
            "<85>Nov 24 19:50:01 pam_authguard[42]: ban 203.0.113.7 for 10m"
        );
    }

    #[test]
    fn untrusted_text_cannot_forge_lines() {
        assert_eq!(untrusted(b"alice"), "alice");
        assert_eq!(untrusted(b"a\nban 1.2.3.4"), "a\\x0aban 1.2.3.4");
        assert_eq!(untrusted(b"\x1b[31m"), "\\x1b[31m");
        assert_eq!(untrusted(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(untrusted("zoë".as_bytes()), "zoë");
        assert_eq!(untrusted(b"say \"hi\""), "say \\x22hi\\x22");
    }

    #[test]
    fn a_stalled_syslog_never_blocks_the_caller() {
        let dir = std::env::temp_dir().join(format!("ag-syslog-stall-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        // A receiver that never reads: its queue fills after a few datagrams.
        let _rx = UnixDatagram::bind(&path).unwrap();
        let log = Logger::new(&path, "authguard");
        let start = std::time::Instant::now();
        for i in 0..100 {
            log.log(Severity::Info, &format!("line {i}"));
        }
        // 100 lines, most dropped after SEND_TIMEOUT each: bounded, not hung.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn logs_reach_the_socket_truncated_and_on_one_line() {
        let dir = std::env::temp_dir().join(format!("ag-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        Logger::new(&path, "authguard").log(Severity::Info, &format!("x\ny{}", "z".repeat(5000)));
        let mut buf = vec![0u8; 8192];
        let n = rx.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            got.starts_with("<86>") && got.contains(" authguard["),
            "{got}"
        );
        assert!(!got.contains('\n') && got.len() < 1200, "{got}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

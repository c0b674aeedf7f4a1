//! `journalctl -o json` lines: one JSON object per journal entry.
//!
//! Fields used: `MESSAGE` (a string, or an array of byte values when it is
//! not UTF-8), `SYSLOG_IDENTIFIER` (else `_COMM`) for the program, `_PID`
//! (else `SYSLOG_PID`), and `__REALTIME_TIMESTAMP` (microseconds since the
//! epoch) for the time. Field values are strings, as journalctl writes them;
//! plain JSON numbers are accepted too.
//!
//! Any local user can log with `SYSLOG_IDENTIFIER=sshd` (`logger -t sshd
//! "Failed password for root from ADMIN …"`). journald records the
//! executable itself in the trusted `_EXE`, which no client sets: where an
//! entry has it, it must be one of OpenSSH's server binaries in a system
//! directory, or the entry is not sshd's. Entries without it (from an
//! export or a relay, or from a sender that exited before journald read
//! its `/proc` entry) are judged by their identifier alone: this narrows
//! forgery, it does not close it.

use crate::bytes;
use crate::parsed::{Parsed, is_sshd_program, parse_pid, sshd_message};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Microseconds in a second.
const MICROS_PER_SECOND: i64 = 1_000_000;

/// Parses one journal JSON line. Lines that cannot be sshd's (no `sshd`
/// anywhere in them) are skipped before any JSON is parsed.
pub(crate) fn parse_json_line(line: &[u8]) -> Parsed<'static> {
    if bytes::find(line, b"sshd").is_none() {
        return Parsed::NotSshd;
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(line) else {
        return Parsed::NotSshd;
    };
    let program = text_field(&fields, "SYSLOG_IDENTIFIER").or_else(|| text_field(&fields, "_COMM"));
    if !program.is_some_and(|p| is_sshd_program(p.as_bytes())) {
        return Parsed::NotSshd;
    }
    if text_field(&fields, "_EXE").is_some_and(|exe| !is_openssh_binary(exe)) {
        return Parsed::NotSshd;
    }
    let Some(message) = fields.get("MESSAGE").and_then(field_bytes) else {
        return Parsed::Unrecognised;
    };
    let pid = pid_field(&fields, "_PID").or_else(|| pid_field(&fields, "SYSLOG_PID"));
    let time = integer_field(&fields, "__REALTIME_TIMESTAMP")
        .map(|micros| micros.div_euclid(MICROS_PER_SECOND));
    sshd_message(pid, time, &message).into_owned()
}

/// Directories OpenSSH's server binaries are installed in: `sshd` in the
/// first ones, `sshd-session` and `sshd-auth` (9.8+) in the others
/// (Debian and Ubuntu, Fedora and RHEL, Arch, source builds). All root's.
const OPENSSH_DIRS: [&str; 8] = [
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/lib/openssh",
    "/usr/libexec/openssh",
    "/usr/lib/ssh",
    "/usr/libexec",
    "/usr/local/libexec",
];

/// Whether `exe` (journald's `_EXE`) is an OpenSSH server binary where a
/// package or `make install` puts it.
fn is_openssh_binary(exe: &str) -> bool {
    let path = std::path::Path::new(exe);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let dir = path.parent().and_then(|d| d.to_str()).unwrap_or_default();
    is_sshd_program(name.as_bytes()) && OPENSSH_DIRS.contains(&dir)
}

/// A field's bytes: a JSON string, or journalctl's array of byte values.
fn field_bytes(value: &Value) -> Option<Cow<'_, [u8]>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text.as_bytes())),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_u64().and_then(|byte| u8::try_from(byte).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(Cow::Owned),
        _ => None,
    }
}

/// A field that must be text.
fn text_field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields.get(name)?.as_str()
}

/// A field holding an integer, as a decimal string or a JSON number.
fn integer_field(fields: &Map<String, Value>, name: &str) -> Option<i64> {
    match fields.get(name)? {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// A field holding a process id.
fn pid_field(fields: &Map<String, Value>, name: &str) -> Option<u32> {
    match fields.get(name)? {
        Value::String(text) => parse_pid(text.as_bytes()),
        Value::Number(number) => number.as_u64().and_then(|pid| u32::try_from(pid).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn entry(identifier: &str, message: &str) -> String {
        format!(
            r#"{{"__REALTIME_TIMESTAMP":"1795514401123456","_PID":"4321","SYSLOG_IDENTIFIER":"{identifier}","_COMM":"{identifier}","MESSAGE":{message},"PRIORITY":"6"}}"#
        )
    }

    #[test]
    fn string_message_with_pid_and_time() {
        let line = entry(
            "sshd-session",
            r#""Invalid user admin from 203.0.113.5 port 4242""#,
        );
        let event = parse_json_line(line.as_bytes()).event().unwrap();
        assert_eq!(
            (event.kind, event.pid, event.time),
            (Kind::InvalidUser, Some(4321), Some(1_795_514_401))
        );
        assert_eq!(event.addr.to_string(), "203.0.113.5");
    }

    #[test]
    fn escaped_quotes_in_the_user_name() {
        let line = entry(
            "sshd",
            r#""Invalid user \"x\" from 6.6.6.6 from 203.0.113.5 port 1""#,
        );
        let event = parse_json_line(line.as_bytes()).event().unwrap();
        assert_eq!(event.addr.to_string(), "203.0.113.5");
        assert_eq!(event.user.as_deref(), Some(&br#""x" from 6.6.6.6"#[..]));
    }

    #[test]
    fn byte_array_message_for_a_user_that_is_not_utf8() {
        let text = b"Failed password for invalid user \xff\xfe from 203.0.113.5 port 1 ssh2";
        let numbers: Vec<String> = text.iter().map(u8::to_string).collect();
        let line = entry("sshd", &format!("[{}]", numbers.join(",")));
        let event = parse_json_line(line.as_bytes()).event().unwrap();
        assert_eq!(
            (event.kind, event.user.as_deref()),
            (Kind::FailedAuth, Some(&b"\xff\xfe"[..]))
        );
    }

    #[test]
    fn a_local_user_logging_as_sshd_is_not_sshd() {
        let forged = r#"{"SYSLOG_IDENTIFIER":"sshd","_EXE":"/usr/bin/logger","_COMM":"logger","_PID":"9","MESSAGE":"Failed password for root from 192.0.2.1 port 1 ssh2"}"#;
        assert_eq!(parse_json_line(forged.as_bytes()), Parsed::NotSshd);
        let renamed = r#"{"SYSLOG_IDENTIFIER":"sshd","_EXE":"/home/u/sshd","_COMM":"sshd","_PID":"9","MESSAGE":"Failed password for root from 192.0.2.1 port 1 ssh2"}"#;
        assert_eq!(parse_json_line(renamed.as_bytes()), Parsed::NotSshd);
        for exe in [
            "/usr/sbin/sshd",
            "/usr/lib/openssh/sshd-session",
            "/usr/libexec/openssh/sshd-auth",
        ] {
            let real = format!(
                r#"{{"SYSLOG_IDENTIFIER":"sshd","_EXE":"{exe}","_PID":"9","MESSAGE":"Failed password for root from 192.0.2.1 port 1 ssh2"}}"#
            );
            assert!(parse_json_line(real.as_bytes()).event().is_some(), "{exe}");
        }
    }

    #[test]
    fn comm_stands_in_for_a_missing_identifier() {
        let line = r#"{"_COMM":"sshd","_PID":7,"MESSAGE":"Connection closed by 203.0.113.5 port 2 [preauth]"}"#;
        let event = parse_json_line(line.as_bytes()).event().unwrap();
        assert_eq!(
            (event.kind, event.pid, event.time),
            (Kind::ConnectionClosedPreauth, Some(7), None)
        );
    }

    #[test]
    fn other_programs_and_broken_lines_are_skipped() {
        let sudo = entry(
            "sudo",
            r#""Invalid user admin from 203.0.113.5 port 4242 sshd""#,
        );
        assert_eq!(parse_json_line(sudo.as_bytes()), Parsed::NotSshd);
        assert_eq!(
            parse_json_line(br#"{"MESSAGE":"Invalid user a from 203.0.113.5 port 1"}"#),
            Parsed::NotSshd
        );
        assert_eq!(
            parse_json_line(br#"{"SYSLOG_IDENTIFIER":"sshd","MESSAGE":null}"#),
            Parsed::Unrecognised
        );
        assert_eq!(
            parse_json_line(br#"{"SYSLOG_IDENTIFIER":"sshd", broken"#),
            Parsed::NotSshd
        );
        assert_eq!(parse_json_line(br#"["sshd"]"#), Parsed::NotSshd);
    }
}

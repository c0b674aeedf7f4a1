//! `journalctl -o json` lines: one JSON object per journal entry.
//!
//! Fields used: `MESSAGE` (a string, or an array of byte values when it is
//! not UTF-8), `SYSLOG_IDENTIFIER` (else `_COMM`) for the program, `_PID`
//! (else `SYSLOG_PID`), and `__REALTIME_TIMESTAMP` (microseconds since the
//! epoch) for the time. Field values are strings, as journalctl writes them;
//! plain JSON numbers are accepted too.

use crate::bytes;
use crate::framing::{Parsed, is_sshd_program, parse_pid, sshd_message};
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
    let Some(message) = fields.get("MESSAGE").and_then(field_bytes) else {
        return Parsed::Unrecognised;
    };
    let pid = pid_field(&fields, "_PID").or_else(|| pid_field(&fields, "SYSLOG_PID"));
    let time = integer_field(&fields, "__REALTIME_TIMESTAMP")
        .map(|micros| micros.div_euclid(MICROS_PER_SECOND));
    sshd_message(pid, time, &message).into_owned()
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

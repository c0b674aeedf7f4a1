//! The line around an sshd message: which program logged it, its pid, and
//! when. Recognised framings:
//!
//! - RFC 3164 syslog, also `journalctl -o short`: `Nov 24 10:00:01 host sshd[123]: MSG`,
//!   with or without a leading `<PRI>` and with or without the host;
//! - `journalctl -o short-precise`: `Nov 24 10:00:01.123456 host sshd[123]: MSG`;
//! - rsyslog's high-precision ISO and `journalctl -o short-iso`:
//!   `2026-11-24T10:00:01.123456+00:00 host sshd[123]: MSG`;
//! - RFC 5424: `<38>1 2026-11-24T10:00:01.003Z host sshd 123 - - MSG`;
//! - `journalctl -o short-unix`: `1795514401.123456 host sshd[123]: MSG`;
//! - `journalctl -o short-monotonic`: `[ 1234.567890] host sshd[123]: MSG` (no wall time);
//! - `journalctl -o json`: one JSON object per line (see the `journal` module);
//! - `journalctl -o cat`, `sshd -E FILE` and other bare messages: `MSG` alone.
//!
//! Lines from programs other than `sshd`, `sshd-session` and `sshd-auth`
//! (OpenSSH 9.8+ splits sshd into these) are skipped before their message is looked at.

use crate::bytes;
use crate::civil_time::{parse_iso, parse_rfc3164};
use crate::event::Event;
use crate::journal;
use crate::message::parse_message;

/// The byte-order mark RFC 5424 allows before a UTF-8 message.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses one log line in any recognised framing (a trailing line ending is
/// ignored). `None` for lines not from sshd, or whose message is no event.
///
/// Text lines are parsed without allocating; the event borrows its user
/// name from `line`. Journal JSON lines allocate.
///
/// `time` is Unix seconds UTC where the framing carries a time. RFC 3164
/// timestamps (also `journalctl -o short` and `short-precise`) have no year
/// and no zone: they are read in the year `year_hint` and as UTC, so a host
/// logging local time or a line from another year gets a shifted time.
pub fn parse_line(line: &[u8], year_hint: i32) -> Option<Event<'_>> {
    classify_line(line, year_hint).event()
}

/// What a log line is, for tools that count what they did not understand
/// (`guardctl scan --show-missed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a line from sshd (another program, or no framing and no event).
    NotSshd,
    /// sshd's, but no event authguard knows.
    Unrecognised,
    /// sshd's, and this event.
    Event(Event<'a>),
}

impl<'a> Parsed<'a> {
    /// The event, if any.
    pub fn event(self) -> Option<Event<'a>> {
        match self {
            Parsed::Event(event) => Some(event),
            Parsed::NotSshd | Parsed::Unrecognised => None,
        }
    }
}

/// Like [`parse_line`], telling sshd lines without an event from other lines.
pub fn classify_line(line: &[u8], year_hint: i32) -> Parsed<'_> {
    let line = bytes::trim_line_end(line);
    let parsed = match line.first() {
        None => None,
        Some(b'{') => Some(journal::parse_json_line(line)),
        Some(b'<') => parse_with_priority(line, year_hint),
        Some(_) => Some(parse_text_line(line, year_hint)),
    };
    parsed.unwrap_or(Parsed::NotSshd)
}

/// Whether a syslog identifier names one of OpenSSH's server programs.
pub(crate) fn is_sshd_program(program: &[u8]) -> bool {
    matches!(program, b"sshd" | b"sshd-session" | b"sshd-auth")
}

/// A text line: a timestamp and header, or a bare message.
fn parse_text_line(line: &[u8], year_hint: i32) -> Parsed<'_> {
    let framed = match leading_time(line, year_hint) {
        Some((time, rest)) => rest
            .strip_prefix(b" ")
            .and_then(|r| parse_after_time(r, time)),
        None => parse_message(line).map(Parsed::Event),
    };
    framed.unwrap_or(Parsed::NotSshd)
}

/// `<PRI>1 …` (RFC 5424), or `<PRI>` before an RFC 3164 line as written to
/// `/dev/log` or sent over the network (its timestamp and host optional).
fn parse_with_priority(line: &[u8], year_hint: i32) -> Option<Parsed<'_>> {
    let (priority, rest) = bytes::split_once(&line[1..], b">")?;
    bytes::parse_decimal(priority, 3)?;
    if let Some(rfc5424) = rest.strip_prefix(b"1 ") {
        return parse_rfc5424(rfc5424);
    }
    match leading_time(rest, year_hint) {
        Some((time, after)) => parse_after_time(after.strip_prefix(b" ")?, time),
        None => parse_after_time(rest, None),
    }
}

/// The timestamp a text line starts with, as Unix seconds when it names a
/// wall time, and the text after it.
fn leading_time(line: &[u8], year_hint: i32) -> Option<(Option<i64>, &[u8])> {
    match line.first()? {
        b'0'..=b'9' => parse_iso(line).or_else(|| parse_unix_time(line)),
        b'[' => skip_monotonic_time(line),
        b'A'..=b'Z' => parse_rfc3164(line, year_hint).map(|(time, rest)| (Some(time), rest)),
        _ => None,
    }
}

/// `journalctl -o short-unix`: `SECONDS.FRACTION`.
fn parse_unix_time(line: &[u8]) -> Option<(Option<i64>, &[u8])> {
    let (seconds, rest) = bytes::split_digits(line);
    let seconds = bytes::parse_decimal(seconds, 12)?;
    let (fraction, rest) = bytes::split_digits(rest.strip_prefix(b".")?);
    if fraction.is_empty() {
        return None;
    }
    Some((Some(i64::try_from(seconds).ok()?), rest))
}

/// `journalctl -o short-monotonic`: `[ SECONDS.FRACTION]`, time since boot.
fn skip_monotonic_time(line: &[u8]) -> Option<(Option<i64>, &[u8])> {
    let (inside, rest) = bytes::split_once(&line[1..], b"]")?;
    let is_uptime = |b: &u8| b.is_ascii_digit() || matches!(b, b'.' | b' ');
    inside.iter().all(is_uptime).then_some((None, rest))
}

/// `[HOST ]PROGRAM[PID]: MESSAGE`, after the timestamp.
fn parse_after_time(rest: &[u8], time: Option<i64>) -> Option<Parsed<'_>> {
    let (first, after_first) = bytes::first_token(rest);
    let (tag, message) = if first.ends_with(b":") {
        (first, after_first)
    } else {
        bytes::first_token(after_first)
    };
    let (program, pid) = parse_tag(tag.strip_suffix(b":")?)?;
    Some(from_program(program, pid, time, message))
}

/// A syslog tag: `PROGRAM[PID]` or `PROGRAM`.
fn parse_tag(tag: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let Some(open) = tag.strip_suffix(b"]") else {
        return Some((tag, None));
    };
    let (program, pid) = bytes::rsplit_once(open, b"[")?;
    Some((program, Some(parse_pid(pid)?)))
}

/// RFC 5424 after `<PRI>1 `: `TIMESTAMP HOST APP PROCID MSGID SD [MSG]`.
fn parse_rfc5424(rest: &[u8]) -> Option<Parsed<'_>> {
    let (timestamp, rest) = bytes::first_token(rest);
    let (_host, rest) = bytes::first_token(rest);
    let (app, rest) = bytes::first_token(rest);
    let (procid, rest) = bytes::first_token(rest);
    let (_msgid, rest) = bytes::first_token(rest);
    let time = match timestamp {
        b"-" => None,
        _ => {
            parse_iso(timestamp)
                .filter(|(_, after)| after.is_empty())?
                .0
        }
    };
    let pid = match procid {
        b"-" => None,
        _ => Some(parse_pid(procid)?),
    };
    let message = skip_structured_data(rest)?;
    Some(from_program(
        app,
        pid,
        time,
        message.strip_prefix(UTF8_BOM).unwrap_or(message),
    ))
}

/// The message after RFC 5424 structured data: `-`, or `[id k="v"]…`
/// elements whose quoted values may hold `\]` and `\"`.
fn skip_structured_data(text: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = text.strip_prefix(b"-") {
        return Some(rest.strip_prefix(b" ").unwrap_or(rest));
    }
    if text.first() != Some(&b'[') {
        return None;
    }
    let mut rest = text;
    while rest.first() == Some(&b'[') {
        rest = skip_structured_element(rest)?;
    }
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// The text after one `[…]` structured-data element at the start of `text`.
fn skip_structured_element(text: &[u8]) -> Option<&[u8]> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (at, &b) in text.iter().enumerate().skip(1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b']' if !in_quotes => return Some(&text[at + 1..]),
            _ => {}
        }
    }
    None
}

/// The event in `message` if `program` is sshd's, with the framing's pid and time.
pub(crate) fn from_program<'a>(
    program: &[u8],
    pid: Option<u32>,
    time: Option<i64>,
    message: &'a [u8],
) -> Parsed<'a> {
    if !is_sshd_program(program) {
        return Parsed::NotSshd;
    }
    match parse_message(message) {
        Some(event) => Parsed::Event(Event { pid, time, ..event }),
        None => Parsed::Unrecognised,
    }
}

/// A process id: at most 10 digits that fit a `u32`.
pub(crate) fn parse_pid(digits: &[u8]) -> Option<u32> {
    bytes::parse_decimal(digits, 10).and_then(|pid| u32::try_from(pid).ok())
}

#[cfg(test)]
mod tests;

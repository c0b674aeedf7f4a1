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
use crate::civil_time::{parse_iso, parse_rfc3164, parse_weekday_full, skip_fraction};
use crate::event::Event;
use crate::journal;
use crate::message::parse_message;
pub use crate::parsed::{Parsed, SSHD_PROGRAMS};
use crate::parsed::{from_program, is_selector, is_sshd_program, parse_pid};

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

/// Like [`parse_line`], telling sshd lines without an event from other lines.
pub fn classify_line(line: &[u8], year_hint: i32) -> Parsed<'_> {
    Classifier::new(year_hint).classify(line)
}

/// [`classify_line`] for many lines in a row: it remembers the last RFC
/// 3164 timestamp it decoded, which the next lines of a log mostly share
/// (a quarter of a million-line scan's parsing was decoding dates).
#[derive(Debug, Clone)]
pub struct Classifier {
    year_hint: i32,
    /// The last `Mmm dd HH:MM:SS` and its Unix time.
    last_stamp: Option<([u8; RFC3164_STAMP], i64)>,
}

/// Bytes of an RFC 3164 timestamp, `Nov 24 10:00:01`.
const RFC3164_STAMP: usize = 15;

impl Classifier {
    /// A classifier reading RFC 3164 timestamps in `year_hint` (see [`parse_line`]).
    pub fn new(year_hint: i32) -> Classifier {
        Classifier {
            year_hint,
            last_stamp: None,
        }
    }

    /// What `line` is.
    pub fn classify<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        let line = bytes::trim_line_end(line);
        let parsed = match line.first() {
            None => None,
            Some(b'{') => Some(journal::parse_json_line(line)),
            Some(b'<') => self.parse_with_priority(line),
            Some(_) => Some(self.parse_text_line(line)),
        };
        parsed.unwrap_or(Parsed::NotSshd)
    }

    /// A text line: a timestamp and header, or a bare message.
    fn parse_text_line<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        let framed = match self.leading_time(line) {
            Some((time, rest)) => rest
                .strip_prefix(b" ")
                .and_then(|r| parse_after_time(r, time)),
            None if has_untimed_header(line) => parse_after_time(line, None),
            None => parse_message(line).map(Parsed::Event),
        };
        framed.unwrap_or(Parsed::NotSshd)
    }

    /// `<PRI>1 …` (RFC 5424), or `<PRI>` before an RFC 3164 line as written to
    /// `/dev/log` or sent over the network (its timestamp and host optional).
    fn parse_with_priority<'a>(&mut self, line: &'a [u8]) -> Option<Parsed<'a>> {
        let (priority, rest) = bytes::split_once(&line[1..], b">")?;
        bytes::parse_decimal(priority, 3)?;
        if let Some(rfc5424) = rest.strip_prefix(b"1 ") {
            return parse_rfc5424(rfc5424);
        }
        match self.leading_time(rest) {
            Some((time, after)) => parse_after_time(after.strip_prefix(b" ")?, time),
            None => parse_after_time(rest, None),
        }
    }

    /// The timestamp a text line starts with, as Unix seconds when it names a
    /// wall time, and the text after it.
    fn leading_time<'a>(&mut self, line: &'a [u8]) -> Option<(Option<i64>, &'a [u8])> {
        match line.first()? {
            b'0'..=b'9' => parse_iso(line).or_else(|| parse_unix_time(line)),
            b'[' => skip_monotonic_time(line),
            b'A'..=b'Z' => self
                .rfc3164(line)
                .map(|(time, rest)| (Some(time), rest))
                .or_else(|| parse_weekday_full(line)),
            _ => None,
        }
    }

    /// An RFC 3164 timestamp, from the last one when the line repeats it.
    fn rfc3164<'a>(&mut self, line: &'a [u8]) -> Option<(i64, &'a [u8])> {
        let stamp = line.get(..RFC3164_STAMP);
        if let (Some(stamp), Some((last, time))) = (stamp, &self.last_stamp)
            && stamp == last
            && matches!(line.get(RFC3164_STAMP), Some(b' ' | b'.'))
        {
            return Some((*time, skip_fraction(&line[RFC3164_STAMP..])));
        }
        let (time, rest) = parse_rfc3164(line, self.year_hint)?;
        if let Some(stamp) = stamp.and_then(|s| <[u8; RFC3164_STAMP]>::try_from(s).ok()) {
            self.last_stamp = Some((stamp, time));
        }
        Some((time, rest))
    }
}

/// Whether a line without a timestamp starts with a syslog header,
/// `[HOST ]PROGRAM[PID]: ` (log relays, `journalctl` modes without time),
/// or `[HOST ]sshd: `, rather than being a bare message (`sshd -E`).
///
/// A bare message starts with sshd's own words, but some put client text
/// second (`User U from …`, `Failed METHOD for …` with the client's method
/// name): after those words a header is never looked for, so a client
/// cannot make a bare message read as framed.
fn has_untimed_header(line: &[u8]) -> bool {
    const CLIENT_TEXT_NEXT: [&[u8]; 5] =
        [b"User", b"Failed", b"Accepted", b"Postponed", b"Partial"];
    let is_header_tag = |token: &[u8]| {
        token.strip_suffix(b":").is_some_and(|tag| {
            matches!(parse_tag(tag), Some((program, pid)) if pid.is_some() || is_sshd_program(program))
        })
    };
    let (first, rest) = bytes::first_token(line);
    if is_header_tag(first) {
        return true;
    }
    let (second, _) = bytes::first_token(rest);
    let plausible_host =
        !first.is_empty() && !first.ends_with(b":") && !CLIENT_TEXT_NEXT.contains(&first);
    plausible_host && is_header_tag(second)
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

/// `[HOST ]PROGRAM[PID]: MESSAGE`, after the timestamp (and FreeBSD
/// syslogd -v's `<auth.info>` or `<4.6>` before the host), or a syslog
/// daemon's `[HOST ]last message repeated N times`.
fn parse_after_time(rest: &[u8], time: Option<i64>) -> Option<Parsed<'_>> {
    let rest = skip_bsd_selector(rest);
    if let Some(times) = last_message_repeated(rest) {
        return Some(Parsed::RepeatLast(times));
    }
    let (first, after_first) = bytes::first_token(rest);
    let (tag, message) = if first.ends_with(b":") {
        (first, after_first)
    } else if let Some(times) = last_message_repeated(after_first) {
        return Some(Parsed::RepeatLast(times));
    } else {
        bytes::first_token(after_first)
    };
    let (program, pid) = parse_tag(tag.strip_suffix(b":")?)?;
    Some(from_program(program, pid, time, message))
}

/// The text after FreeBSD syslogd -v's `<FACILITY.LEVEL> ` or `<F.L> `.
fn skip_bsd_selector(text: &[u8]) -> &[u8] {
    let Some(inner) = text.strip_prefix(b"<") else {
        return text;
    };
    match bytes::split_once(inner, b"> ") {
        Some((selector, rest)) if is_selector(selector) => rest,
        _ => text,
    }
}

/// BSD syslogd's and macOS' `last message repeated N times` (or `--- … ---`):
/// the count.
fn last_message_repeated(text: &[u8]) -> Option<u32> {
    // Asked of every line's header: the first byte rules out nearly all.
    if !matches!(text.first(), Some(b'l' | b'-')) {
        return None;
    }
    let text = text.strip_prefix(b"--- ").unwrap_or(text);
    let rest = text.strip_prefix(b"last message repeated ")?;
    let (count, rest) = bytes::split_digits(rest);
    let times = u32::try_from(bytes::parse_decimal(count, 10)?).ok()?;
    let rest = rest
        .strip_prefix(b" times")
        .or_else(|| rest.strip_prefix(b" time"))?;
    matches!(rest, b"" | b" ---")
        .then_some(times)
        .filter(|&times| times > 0)
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

#[cfg(test)]
mod tests;
